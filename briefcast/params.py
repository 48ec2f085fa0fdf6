"""The daily-brief flow's parameters: one typed model, so Prefect's run form explains itself."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field


class BriefParameters(BaseModel):
    edition_date: date | None = Field(
        None,
        title="Edition date",
        description="The day to publish, in the publication's time zone. Empty means today.",
    )
    channels: list[str] = Field(
        default_factory=list,
        title="Channels",
        description="Channels to deliver to, by their config name (e.g. outbox, sendgrid, x, "
        "telegram). Empty means every enabled channel.",
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
        description="Send the edition only to these email addresses, marked [TEST] in the "
        "subject. Subscribers' deliveries are left untouched.",
    )
    require_approval: bool = Field(
        False,
        title="Require approval",
        description="Pause after the preview and test send; deliver only after an operator "
        "approves the run in the Prefect UI.",
    )
    config_path: str = Field(
        "",
        title="Config file",
        description="Path to the briefcast TOML config on the worker. Empty means the default.",
    )
