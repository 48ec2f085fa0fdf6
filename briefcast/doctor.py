"""`briefcast doctor`: is this setup ready to send? One check per line, nothing is sent.

Each check gives ok, warn (works, but look at it) or FAIL (a run would fail or mail would
be rejected or junked). Checks that need the config are skipped when it does not load.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from briefcast.config import ConfigFileError, Settings, load_settings

OK, WARN, FAIL = "ok", "warn", "FAIL"
EMAIL_TYPES = {"sendgrid", "smtp"}  # channels that send real mail from publication.sender_email
RESERVED_DOMAINS = ("example", "test", "invalid", "localhost", "local")
RESERVED_NAMES = {"example.com", "example.net", "example.org"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
DNS_ADVICE = {
    "SPF": "a TXT record on {domain} starting v=spf1 that includes your mail provider",
    "DKIM": "the DKIM record your provider gives you at <selector>._domainkey.{domain} "
    "(SendGrid: CNAMEs s1._domainkey and s2._domainkey)",
    "DMARC": "a TXT record on _dmarc.{domain} starting v=DMARC1 (p=none to start)",
}


@dataclass(frozen=True)
class Check:
    status: str
    name: str
    detail: str


def email_channels(settings: Settings) -> list[str]:
    return [
        name
        for name in settings.enabled_channels
        if settings.channels[name].get("type", name) in EMAIL_TYPES
    ]


def check_config(config: Path | None) -> tuple[Check, Settings | None]:
    try:
        settings = load_settings(config)
    except ConfigFileError as exc:
        return Check(FAIL, "config", str(exc).replace("\n", ";")), None
    detail = f"{settings.source_file}: {settings.publication.name}"
    return Check(OK, "config", detail), settings


def check_sources(settings: Settings) -> Iterator[Check]:
    for source in settings.sources:
        if source.type == "markdown":
            folder = settings.path(source.path)
            articles = len(list(folder.glob("*.md"))) if folder.is_dir() else None
            if articles is None:
                yield Check(FAIL, f"source {source.name}", f"folder not found: {folder}")
            else:
                yield Check(OK, f"source {source.name}", f"{folder} ({articles} articles)")
        elif urlsplit(source.url).scheme in {"http", "https"}:
            yield Check(OK, f"source {source.name}", f"{source.url} (fetched at run time)")
        else:
            path = settings.path(source.url)
            status = OK if path.is_file() else FAIL
            yield Check(
                status, f"source {source.name}", str(path) + ("" if status == OK else ": not found")
            )


def check_channels(settings: Settings) -> Iterator[Check]:
    from briefcast.pipeline import open_channel

    if not settings.enabled_channels:
        yield Check(FAIL, "channels", "none enabled: add a [channels.NAME] table")
    for name in settings.enabled_channels:
        try:
            adapter = open_channel(settings, name, [])
        except Exception as exc:  # whatever stops it starting, as the run would report it
            yield Check(FAIL, f"channel {name}", str(exc).replace("\n", ";"))
            continue
        adapter.close()
        kind = settings.channels[name].get("type", name)
        yield Check(OK, f"channel {name}", f"{kind}: settings and secrets load (nothing sent)")


def check_database(settings: Settings) -> Check:
    from briefcast import schema

    try:
        engine = schema.plain_engine(settings.database_url)
    except schema.SchemaError:
        return Check(OK, "database", f"{settings.database_url}: created on the first run")
    where = schema.describe(engine)
    try:
        with engine.connect() as connection:
            found = schema.state(connection)
    except Exception as exc:  # unreachable server, bad credentials, not a database
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Check(FAIL, "database", f"{where}: {first}")
    finally:
        engine.dispose()
    if found.up_to_date:
        return Check(OK, "database", f"{where}: schema {found.head}, the newest")
    try:
        schema.refuse_unknown(engine, found)
    except schema.SchemaError as exc:
        return Check(FAIL, "database", str(exc))
    return Check(
        WARN,
        "database",
        f"{where}: schema {found.described}, newest {found.head}: the next command upgrades "
        "it (or run `briefcast db upgrade` now)",
    )


def check_prefect() -> Check:
    url = os.environ.get("PREFECT_API_URL", "")
    if not url:
        return Check(
            OK, "prefect", "embedded (no PREFECT_API_URL): `briefcast run` needs no server"
        )
    try:
        response = httpx.get(url.rstrip("/") + "/health", timeout=5)
    except httpx.HTTPError as exc:
        return Check(FAIL, "prefect", f"{url}: not reachable ({type(exc).__name__})")
    if response.status_code != 200:
        return Check(FAIL, "prefect", f"{url}/health answered {response.status_code}")
    return Check(OK, "prefect", f"{url}: healthy")


def check_web_base_url(settings: Settings) -> Check:
    url = settings.publication.web_base_url
    parts = urlsplit(url)
    if parts.scheme == "https":
        return Check(OK, "web base URL", url)
    why = "unsubscribe and view-in-browser links need https (mailbox providers require it)"
    if email_channels(settings):
        return Check(FAIL, "web base URL", f"{url}: {why}")
    where = " (this machine only)" if parts.hostname in LOOPBACK_HOSTS else ""
    return Check(WARN, "web base URL", f"{url}{where}: before sending email, {why}")


def check_postal_address(settings: Settings) -> Check:
    if settings.publication.postal_address.strip():
        return Check(OK, "postal address", settings.publication.postal_address)
    status = FAIL if email_channels(settings) else WARN
    return Check(
        status, "postal address", "empty: bulk mail must show one (publication.postal_address)"
    )


def is_reserved(domain: str) -> bool:
    return domain in RESERVED_NAMES or domain.rsplit(".", 1)[-1] in RESERVED_DOMAINS


def check_sender_dns(settings: Settings, *, offline: bool, resolver=None) -> Iterator[Check]:
    domain = settings.publication.sender_email.rpartition("@")[2].lower()
    advice = {name: text.format(domain=domain) for name, text in DNS_ADVICE.items()}
    if offline or is_reserved(domain):
        why = "not looked up (--offline)" if offline else "a reserved example domain"
        for name, text in advice.items():
            yield Check(WARN, f"sender {name}", f"{domain}: {why}; real mail needs {text}")
        return
    import dns.exception
    import dns.resolver

    if resolver is None:
        resolver = dns.resolver.Resolver()
        resolver.lifetime = 4
    missing = FAIL if email_channels(settings) else WARN

    def txt(name: str) -> list[str] | None:
        try:
            answer = resolver.resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException:
            return None  # no answer at all: offline, or the resolver is down
        return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]

    for name, record, prefix in (
        ("SPF", domain, "v=spf1"),
        ("DMARC", f"_dmarc.{domain}", "v=DMARC1"),
    ):
        found = txt(record)
        if found is None:
            yield Check(WARN, f"sender {name}", f"could not look up {record}; check {advice[name]}")
            continue
        match = [value for value in found if value.lower().startswith(prefix.lower())]
        if match:
            yield Check(OK, f"sender {name}", f"{record}: {match[0][:80]}")
        else:
            yield Check(missing, f"sender {name}", f"{record} has none; add {advice[name]}")
    yield Check(
        WARN if email_channels(settings) else OK,
        "sender DKIM",
        f"not checked here: {advice['DKIM']}",
    )


def run_checks(config: Path | None, *, offline: bool = False, resolver=None) -> list[Check]:
    first, settings = check_config(config)
    checks = [first]
    if settings is None:
        return checks
    checks += check_sources(settings)
    checks += check_channels(settings)
    checks.append(check_database(settings))
    checks.append(check_prefect())
    checks.append(check_web_base_url(settings))
    checks.append(check_postal_address(settings))
    checks += check_sender_dns(settings, offline=offline, resolver=resolver)
    return checks
