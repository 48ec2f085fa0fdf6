"""Loading and validating the briefcast config file.

One TOML file describes the publication, its sources, the edition and the
channels. Relative paths are resolved against the file's folder. Secrets are
never written in the file: a secret setting is a reference, ``{ env = "NAME" }``
(or ``{ prefect_secret = "block-name" }``), resolved when the file is loaded.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "briefcast.toml"  # in a checkout
LOCAL_CONFIG = "briefcast.toml"  # in the working folder: a newsroom `briefcast init` made


DATABASE_SCHEMES = ("sqlite:///", "postgresql://", "postgresql+psycopg://")


class ConfigFileError(Exception):
    """The config file is missing, unreadable or invalid. The message names file and key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


def resolve_secret(value: Any) -> Any:
    """Turn ``{env = "NAME"}`` or ``{prefect_secret = "name"}`` into the secret's value."""
    if isinstance(value, dict) and set(value) == {"env"}:
        name = value["env"]
        if not isinstance(name, str) or not name:
            raise ValueError('the env reference takes a variable name: { env = "NAME" }')
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]
    if isinstance(value, dict) and set(value) == {"prefect_secret"}:
        if not isinstance(value["prefect_secret"], str) or not value["prefect_secret"]:
            raise ValueError('the reference takes a block name: { prefect_secret = "name" }')
        from briefcast.prefect_secrets import load_prefect_secret

        return load_prefect_secret(value["prefect_secret"])
    if isinstance(value, str):
        raise ValueError('write secrets as a reference, { env = "NAME" }, never inline')
    return value


Secret = Annotated[SecretStr, BeforeValidator(resolve_secret)]


class Publication(Strict):
    name: str
    site_url: str
    timezone: str = "UTC"
    postal_address: str = Field(description="Shown in every email's footer (CAN-SPAM).")
    sender_email: str
    sender_name: str = ""
    reply_to: str = ""
    subscribe_url: str = ""
    subscribe_call: str = "Get the daily brief in your inbox, on X and on Telegram."
    web_base_url: str = Field(
        "http://127.0.0.1:8000",
        description="Public base URL of `briefcast web`: unsubscribe and view-in-browser links.",
    )
    language: str = "en"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Source(Strict):
    name: str
    type: Literal["feed", "markdown"]
    url: str = Field("", description="Feed URL (http/https) or a local file path.")
    path: str = Field("", description="Folder of Markdown articles (type = markdown).")
    priority: int = 0
    timeout_seconds: float = 10.0
    max_bytes: int = 5_000_000


class Edition(Strict):
    lookback_hours: int = Field(24, ge=1, le=24 * 14)
    max_articles: int = Field(12, ge=1, le=100)
    templates: str = ""
    x_thread: bool = True
    cache_dir: str = ""


class Design(Strict):
    """The email's look; every channel shares the brand colour and the logo."""

    brand_color: str = Field(
        "#0f5e78",
        pattern=r"^#[0-9a-fA-F]{6}$",
        description="Accent for the masthead, kickers, links and buttons (#rrggbb); darkened "
        "or lightened where needed so text keeps a 4.5:1 contrast in light and dark mode.",
    )
    logo_url: str = Field(
        "", description="https URL of a logo image for the masthead; default: the name in type."
    )
    logo_width: int = Field(200, ge=40, le=560, description="Logo width in CSS pixels.")
    tagline: str = Field("", description="A short line under the masthead.")

    @field_validator("logo_url")
    @classmethod
    def _http_logo(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("logo_url must be an http(s) URL")
        return value


class UtmTags(Strict):
    """UTM parameters added to story links in one channel's variant ({edition} and {date}
    in a value are replaced by the edition's id and date)."""

    source: str = ""
    medium: str = ""
    campaign: str = ""
    content: str = ""


class Database(Strict):
    url: str = ""

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value and not value.startswith(DATABASE_SCHEMES):
            raise ValueError("use sqlite:///PATH or postgresql://USER@HOST/NAME")
        return value


class Dispatch(Strict):
    max_attempts: int = Field(5, ge=1, le=20)
    backoff_seconds: float = Field(1.0, ge=0)
    max_wait_seconds: float = Field(
        900, ge=0, description="Longest provider-requested wait honoured within one run."
    )
    max_backoff_seconds: float = Field(
        60, ge=0, description="Cap of the exponential backoff between retries."
    )
    concurrency: dict[str, Annotated[int, Field(ge=1, le=64)]] = Field(
        default_factory=dict,
        description="Requests in flight at once, per channel name (default: the adapter's: "
        "4 for SendGrid, 1 for the others).",
    )
    shards: dict[str, Annotated[int, Field(ge=1, le=64)]] = Field(
        default_factory=dict,
        description="Shards per channel name, each a run of the dispatch-shard deployment on "
        "a worker of shard_pool (default 1: the channel is sent by the daily-brief run itself).",
    )
    shard_pool: str = Field(
        "briefcast", min_length=1, description="The Prefect work pool whose workers run shards."
    )


class WebSmtp(Strict):
    """The SMTP server that sends subscription confirmations (``[web.smtp]``).

    Separate from the delivery channels on purpose: a newsroom sending the brief
    through SendGrid's API still needs a mail server (or SendGrid's SMTP relay)
    for the double opt-in mail. The keys match ``[channels.smtp]``'s.
    """

    host: str = "localhost"
    port: int | None = Field(None, ge=1, le=65535, description="Default: 587, 465 or 25.")
    security: Literal["starttls", "tls", "plain"] = "starttls"
    username: str = ""
    password: Secret | None = None
    timeout_seconds: float = Field(10.0, gt=0)
    from_email: str = Field("", description="Default: publication.sender_email.")
    ca_file: str = Field("", description="Trust this CA bundle (a private mail server).")

    @property
    def effective_port(self) -> int:
        return self.port or {"starttls": 587, "tls": 465, "plain": 25}[self.security]


class WebLimits(Strict):
    """How much the public web app accepts (``[web.limits]``). Rates read like "5/hour",
    "1 per 5 minutes" (the ``limits`` library's notation)."""

    storage_url: str = Field(
        "memory://",
        description="Where the rate counters live: memory:// for one process, "
        "redis://HOST:6379/0 when several web processes serve.",
    )
    key_prefix: str = Field("briefcast", pattern=r"^[A-Za-z0-9_.:-]{1,100}$")
    per_client: str = Field("10/hour", description="Subscribe requests from one client IP.")
    overall: str = Field("200/hour", description="Subscribe requests from everyone together.")
    per_mailbox: str = Field(
        "1 per 5 minutes;3 per day",
        description="Confirmation mails to one mailbox (name+tag@ counts as name@).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto headers are believed; nobody else's are.",
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Larger request bodies get 413.")
    pending_days: int = Field(
        7, ge=1, le=90, description="Never-confirmed sign-ups are deleted after this many days."
    )

    @field_validator("per_client", "overall", "per_mailbox")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError('write a rate like "10/hour" or "1 per 5 minutes"') from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"not an IP address or network: {item!r}") from None
        return value


class Web(Strict):
    """The subscriber web app, ``briefcast web`` (``[web]``)."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    root_path: str = Field(
        "",
        pattern=r"^(/[A-Za-z0-9._~-]+)*$",
        description="Path prefix under which a reverse proxy serves the app, e.g. /newsletter.",
    )
    secret: Secret | None = Field(
        None,
        description="HMAC key for subscriber links; default: a key kept in the data folder.",
    )
    sendgrid_webhook_public_key: str = Field(
        "", description="Signed Event Webhook verification key (base64 DER or PEM)."
    )
    allow_unsigned_webhook: bool = Field(
        False,
        description="Accept SendGrid events without a signature (unsafe: anyone can post them).",
    )
    webhook_max_age_seconds: int = Field(
        25 * 3600,
        ge=60,
        description="Signed events older than this are refused (SendGrid retries for 24 h).",
    )
    resubscribe_suppressed: bool = Field(
        False,
        description="A bounced or complained address may come back through a fresh double "
        "opt-in (a confirmation link issued after the bounce or complaint).",
    )
    limits: WebLimits = WebLimits()
    operator_token: Secret | None = Field(
        None, description="Opens the operator report page (/operator); unset: the page is off."
    )
    smtp: WebSmtp = WebSmtp()


class Schedule(Strict):
    """The served ``daily-brief`` deployment and its daily run (``[schedule]``)."""

    deployment: str = Field(
        "daily",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
        description="Deployment name; the UI shows it as daily-brief/<name>.",
    )
    cron: str = Field(
        "0 6 * * *", description="When the scheduled run starts, in publication.timezone."
    )
    days_ago: int = Field(
        1,
        ge=0,
        le=7,
        description="Which day the scheduled run publishes: 1 = yesterday's complete day (a "
        "morning brief; with a one-day window, no story falls between two editions), "
        "0 = today so far (an evening brief: stories after the run wait for no edition).",
    )
    require_approval: bool = Field(
        True, description="Scheduled runs pause for an operator's approval before delivering."
    )
    approval_timeout_seconds: int = Field(
        3 * 3600, ge=1, description="Unanswered this long, the run ends and nothing is sent."
    )
    approval_poll_seconds: int = Field(
        10, ge=1, le=600, description="How often a paused run checks for the operator's answer."
    )
    test_to: list[str] = Field(
        default_factory=list,
        description="Who gets the [TEST] copy of the edition before the approval pause.",
    )
    preview_host: str = Field(
        "127.0.0.1", description="Where `briefcast serve` serves the reviewer's preview."
    )
    preview_port: int = Field(
        0, ge=0, le=65535, description="Its port; 0 picks a free one at each start."
    )
    notify: str = Field(
        "",
        pattern=r"^$|^[a-z0-9-]+/[A-Za-z0-9][A-Za-z0-9_-]*$",
        description="A Prefect notification block, as block-type-slug/block-name (e.g. "
        "slack-webhook/newsroom-desk): told when a run fails or waits for approval.",
    )
    max_lateness_hours: float = Field(
        6,
        gt=0,
        le=168,
        description="A scheduled run that starts this much after the edition was due (its "
        "cron time) sends nothing: the edition is stale. A run for an explicit date is not held.",
    )

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        if not value.startswith("@") and len(value.split()) != 5:
            raise ValueError("cron needs five fields: minute hour day month weekday")
        return value

    @field_validator("test_to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if a.count("@") != 1 or any(c.isspace() for c in a)]
        if bad:
            raise ValueError(f"not an email address: {', '.join(bad)}")
        return value


class Settings(Strict):
    publication: Publication
    edition: Edition = Edition()
    sources: list[Source] = Field(default_factory=list)
    data_dir_setting: str = Field(
        "var",
        alias="data_dir",
        description="Folder for the SQLite database, outbox, archive and caches.",
    )
    database: Database = Database()
    dispatch: Dispatch = Dispatch()
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)
    schedule: Schedule = Schedule()
    subscribers: dict[str, Any] = Field(default_factory=dict)
    web: Web = Web()
    design: Design = Design()
    utm: dict[str, UtmTags] = Field(
        default_factory=dict,
        description="Per variant (email, x, telegram, ...): UTM tags on story links; "
        "no table, no tags.",
    )

    base_dir: Path = Field(PROJECT_ROOT, exclude=True)
    source_file: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _concurrency_of_known_channels(self) -> Settings:
        for key in ("concurrency", "shards"):
            unknown = sorted(set(getattr(self.dispatch, key)) - set(self.channels))
            if unknown:
                raise ValueError(
                    f"dispatch.{key} names channels not configured: {', '.join(unknown)}"
                )
        return self

    def path(self, value: str | Path) -> Path:
        """A path from the config, resolved against the config file's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def templates_dir(self) -> Path:
        from briefcast.resources import BUILTIN_TEMPLATES

        return self.path(self.edition.templates) if self.edition.templates else BUILTIN_TEMPLATES

    @property
    def data_dir(self) -> Path:
        return self.path(os.environ.get("BRIEFCAST_DATA") or self.data_dir_setting)

    @property
    def database_url(self) -> str:
        url = self.database.url
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            # Relative to the config file like every path here, never to the working folder:
            # a run from another folder must find the same ledger.
            return f"sqlite:///{self.path(url.removeprefix('sqlite:///'))}"
        if url:
            return url
        return f"sqlite:///{self.data_dir / 'briefcast.db'}"

    @property
    def enabled_channels(self) -> list[str]:
        return [name for name, conf in self.channels.items() if conf.get("enabled", True)]


def _location(loc: tuple[Any, ...]) -> str:
    parts = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]" if parts else f"[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts)


def describe_validation_error(exc: ValidationError, where: str) -> str:
    lines = [f"{where}: invalid configuration"]
    for err in exc.errors():
        key = _location(err["loc"])
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def default_config_path() -> Path:
    """briefcast.toml in the working folder (a newsroom made by `briefcast init`), else the
    checkout's config/briefcast.toml (the sample publication `make brief` runs)."""
    here = Path(LOCAL_CONFIG)
    if here.is_file() or DEFAULT_CONFIG.is_file():
        return here if here.is_file() else DEFAULT_CONFIG
    raise ConfigFileError(
        f"no config file: none given (--config, BRIEFCAST_CONFIG) and no {LOCAL_CONFIG} here; "
        "`briefcast init DIR` creates one"
    )


def load_settings(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Read and validate a config file; raise ConfigFileError naming the file and the key."""
    path = Path(path or os.environ.get("BRIEFCAST_CONFIG") or default_config_path()).resolve()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigFileError(f"{path}: config file not found") from exc
    except IsADirectoryError as exc:
        raise ConfigFileError(f"{path}: is a folder, not a config file") from exc
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid TOML: {exc}") from exc
    for key, value in (overrides or {}).items():
        raw[key] = value
    try:
        settings = Settings.model_validate({**raw, "base_dir": path.parent, "source_file": path})
    except ValidationError as exc:
        raise ConfigFileError(describe_validation_error(exc, str(path))) from None
    if settings.edition.templates and not settings.templates_dir.is_dir():
        raise ConfigFileError(
            f"{path}: invalid configuration\n"
            f"  edition.templates: folder not found: {settings.templates_dir}"
        )
    return settings


def channel_settings(settings: Settings, name: str, model: type[BaseModel]) -> BaseModel:
    """Validate one channel's table with its adapter's settings model."""
    raw = {k: v for k, v in settings.channels.get(name, {}).items() if k not in {"enabled", "type"}}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        where = f"{settings.source_file or 'config'} [channels.{name}]"
        raise ConfigFileError(describe_validation_error(exc, where)) from None
