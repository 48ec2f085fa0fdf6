"""The daily-brief flow's parameters: one typed model, so Prefect's run form explains itself."""

from __future__ import annotations

from datetime import date

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, field_validator


class BriefParameters(BaseModel):
    model_config = ConfigDict(extra="forbid", title="Daily brief")

    edition_date: date | None = Field(
        None,
        title="Edition date",
        description="The day to publish, in the publication's time zone. Leave it empty "
        "(None) to count back from today with Days back; pick a date to publish that day.",
    )
    days_ago: int = Field(
        0,
        ge=0,
        le=7,
        title="Days back",
        description="Used only when Edition date is empty: publish the day this many days "
        "before today (0 = today so far, 1 = yesterday's complete day, what the scheduled "
        "morning run publishes).",
    )
    channels: list[str] = Field(
        default_factory=list,
        title="Channels",
        description="Deliver only on these channels (the config's [channels] tables). "
        "None selected means every enabled channel.",
    )
    dry_run: bool = Field(
        False,
        title="Dry run",
        description="Gather and render the edition and publish the preview, but send nothing "
        "and record nothing in the ledger.",
    )
    test_to: list[str] = Field(
        default_factory=list,
        title="Test recipients",
        description="Email addresses that get a copy marked [TEST]. Without approval the run "
        "stops there and subscribers get nothing; with approval the test copy goes out before "
        "the pause (none given: the config's [schedule] test_to).",
    )
    require_approval: bool = Field(
        False,
        title="Require approval",
        description="Pause after the preview and the test copy; deliver to subscribers and "
        "followers only once an operator approves the run in the Prefect UI (Resume).",
    )
    config_path: str = Field(
        "",
        title="Config file",
        description="Path to the briefcast TOML config on the machine that runs the flow. "
        "Empty means the default.",
    )

    @field_validator("test_to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        """Checked before anything is gathered, so a typo is named, not a failed run."""
        for address in value:
            try:
                validate_email(address, check_deliverability=False)
            except EmailNotValidError as exc:
                raise ValueError(f"{address!r} is not an email address: {exc}") from None
        return value
