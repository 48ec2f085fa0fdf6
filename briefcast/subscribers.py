"""The subscriber list, stored next to the ledger (SQLite by default, PostgreSQL by URL).

Every address is validated and normalized once, on the way in (email-validator,
no DNS lookups). A subscriber moves ``pending → active`` when they confirm, and
ends ``unsubscribed``, ``bounced`` or ``complained``: those rows are kept as the
suppression list, so an import never brings such an address back. Only an
explicit ``set_status`` (a confirmed opt-in, an operator) can.

Addresses are matched case-insensitively (``address_key``), as mailbox providers
and the signed link tokens do; the stored ``address`` keeps the local part's case.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, NamedTuple
from urllib.parse import quote

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.engine import Connection

from briefcast import tokens
from briefcast.channels.base import Recipient
from briefcast.db import reader_engine
from briefcast.tables import subscribers

PENDING, ACTIVE = "pending", "active"
UNSUBSCRIBED, BOUNCED, COMPLAINED = "unsubscribed", "bounced", "complained"
STATUSES = (PENDING, ACTIVE, UNSUBSCRIBED, BOUNCED, COMPLAINED)
SUPPRESSED = frozenset({UNSUBSCRIBED, BOUNCED, COMPLAINED})

# The timestamp column each status change stamps (pending is the creation itself).
_STAMP = {
    ACTIVE: "confirmed_at",
    UNSUBSCRIBED: "unsubscribed_at",
    BOUNCED: "bounced_at",
    COMPLAINED: "complained_at",
}

EXPORT_COLUMNS = (
    "address",
    "name",
    "status",
    "source",
    "reason",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "bounced_at",
    "complained_at",
    "updated_at",
)


class InvalidAddress(ValueError):
    """The address is not a valid email address; the message says why."""


class UnknownSubscriber(LookupError):
    pass


@dataclass(frozen=True)
class Subscriber:
    address: str
    name: str
    status: str
    source: str
    reason: str | None
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    bounced_at: datetime | None = None
    complained_at: datetime | None = None


class AddResult(NamedTuple):
    subscriber: Subscriber
    created: bool


@dataclass(frozen=True)
class BadRow:
    line: int
    value: str
    reason: str


@dataclass(frozen=True)
class SkippedRow:
    line: int
    address: str
    status: str  # the status the address already has


@dataclass
class ImportReport:
    imported: int = 0
    duplicates: list[SkippedRow] = field(default_factory=list)  # already listed, or twice
    suppressed: list[SkippedRow] = field(default_factory=list)  # unsubscribed/bounced/complained
    bad: list[BadRow] = field(default_factory=list)


def now() -> datetime:
    return datetime.now(UTC)


def normalize(address: str) -> str:
    """The address as stored (domain lowercased, Unicode normalized); InvalidAddress if bad."""
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None


def _key(address: str) -> str:
    return address.lower()


def _clean_name(name: str | None) -> str:
    return " ".join((name or "").split())[:200]  # no line breaks: names end up in headers


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every stamp we write is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _subscriber(row) -> Subscriber:
    return Subscriber(
        address=row.address,
        name=row.name,
        status=row.status,
        source=row.source,
        reason=row.reason,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
        confirmed_at=_utc(row.confirmed_at),
        unsubscribed_at=_utc(row.unsubscribed_at),
        bounced_at=_utc(row.bounced_at),
        complained_at=_utc(row.complained_at),
    )


def _new_row(
    address: str, name: str, status: str, source: str, reason: str | None, stamp=None
) -> dict:
    stamp = stamp or now()
    row = {
        "address": address,
        "address_key": _key(address),
        "name": _clean_name(name),
        "status": status,
        "source": source,
        "reason": reason,
        "created_at": stamp,
        "updated_at": stamp,
    }
    if status in _STAMP:
        row[_STAMP[status]] = stamp
    return row


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")


def _fetch(conn: Connection, address: str):
    return conn.execute(
        select(subscribers).where(subscribers.c.address_key == _key(address))
    ).first()


def get(engine: Engine, address: str) -> Subscriber | None:
    try:
        address = normalize(address)
    except InvalidAddress:
        return None
    with engine.connect() as conn:
        row = _fetch(conn, address)
    return _subscriber(row) if row else None


def add(
    engine: Engine,
    address: str,
    *,
    name: str = "",
    source: str = "cli",
    status: str = ACTIVE,
) -> AddResult:
    """Add one address; an existing one is returned unchanged (``created`` False).

    The exception: a pending address added as active is activated (an operator
    vouching for it). A suppressed address is never reactivated here.
    """
    _check_status(status)
    address = normalize(address)
    with engine.begin() as conn:
        row = _fetch(conn, address)
        if row is None:
            conn.execute(insert(subscribers), [_new_row(address, name, status, source, None)])
            return AddResult(_subscriber(_fetch(conn, address)), True)
        if row.status == PENDING and status == ACTIVE:
            _change(conn, row, ACTIVE, f"added by {source}")
            return AddResult(_subscriber(_fetch(conn, address)), False)
        return AddResult(_subscriber(row), False)


def _change(conn: Connection, row, status: str, reason: str) -> None:
    stamp = now()
    values = {"status": status, "reason": reason or None, "updated_at": stamp}
    if row.status != status and status in _STAMP:
        values[_STAMP[status]] = stamp
    conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(**values))


def set_status(engine: Engine, address: str, status: str, reason: str = "") -> Subscriber:
    """Move a subscriber to ``status``, stamping the change; UnknownSubscriber if absent.

    Setting the status it already has keeps the original timestamp (a second
    unsubscribe click is not a new unsubscribe).
    """
    _check_status(status)
    address = normalize(address)
    with engine.begin() as conn:
        row = _fetch(conn, address)
        if row is None:
            raise UnknownSubscriber(address)
        _change(conn, row, status, reason)
        return _subscriber(_fetch(conn, address))


def remove(engine: Engine, address: str, reason: str = "removed by operator") -> Subscriber:
    """Unsubscribe an address, keeping the row so no later import brings it back.

    An address we never had is recorded as unsubscribed too, for the same reason.
    """
    address = normalize(address)
    with engine.begin() as conn:
        row = _fetch(conn, address)
        if row is None:
            conn.execute(insert(subscribers), [_new_row(address, "", UNSUBSCRIBED, "cli", reason)])
        else:
            _change(conn, row, UNSUBSCRIBED, reason)
        return _subscriber(_fetch(conn, address))


def list_subscribers(engine: Engine, status: str | None = None) -> list[Subscriber]:
    return list(iter_subscribers(engine, status))


def iter_subscribers(engine: Engine, status: str | None = None) -> Iterator[Subscriber]:
    """Every subscriber (or one status) in id order, read from the database as it goes."""
    query = select(subscribers).order_by(subscribers.c.id)
    if status is not None:
        _check_status(status)
        query = query.where(subscribers.c.status == status)
    with engine.connect().execution_options(yield_per=1000) as conn:
        for row in conn.execute(query):
            yield _subscriber(row)


def active(engine: Engine) -> list[Subscriber]:
    return list_subscribers(engine, ACTIVE)


def counts(engine: Engine) -> dict[str, int]:
    result = dict.fromkeys(STATUSES, 0)
    with engine.connect() as conn:
        query = select(subscribers.c.status, func.count()).group_by(subscribers.c.status)
        for status, count in conn.execute(query):
            result[status] = count
    return result


# -- CSV ---------------------------------------------------------------------

_ADDRESS_HEADERS = {"email", "address", "email_address", "e-mail", "mail"}
_NAME_HEADERS = {"name", "full_name", "first_name"}


def _delimiter(sample: str) -> str:
    """A comma, or the semicolon (Excel's CSV in much of Europe) or a tab."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def _header_columns(header: list[str], data: list[list[str]]) -> tuple[int, int]:
    """(address column, name column or -1) from a header row in any language.

    The address column is the one its header names (``email``, ``E-Mail-Adresse``),
    else the first one holding an ``@`` in the data; the name column is one whose
    header says name (``Name``, ``Vorname``, ``Nombre``, ``Nom``).
    """
    lowered = [c.lower() for c in header]
    address = next((i for i, c in enumerate(lowered) if c in _ADDRESS_HEADERS), None)
    if address is None:
        address = next((i for i, c in enumerate(lowered) if "mail" in c), None)
    if address is None:
        found = (i for cells in data[:20] for i, c in enumerate(cells) if "@" in c)
        address = next(found, 0)
    name = next(
        (
            i
            for i, c in enumerate(lowered)
            if i != address and (c in _NAME_HEADERS or "name" in c or c.startswith("nom"))
        ),
        -1,
    )
    return address, name


LOOKAHEAD = 50  # rows read ahead to tell a header row from data
CHUNK = 5000  # rows validated, checked and inserted together by an import


def _csv_rows(handle: IO[str]) -> Iterator[tuple[int, str, str]]:
    """(line number, address cell, name cell) for every non-empty data row, streamed.

    The first non-empty row is a header when it names an address column, or
    when it holds no address while later rows do (a header in another
    language). Without a header, the column with the address comes first
    and the name is the next one (or the first, if the address is not).
    """
    sample = handle.read(64 * 1024)
    handle.seek(0)
    sample = sample[: sample.rfind("\n") + 1] or sample  # whole lines only
    reader = csv.reader(handle, delimiter=_delimiter(sample))

    def non_empty() -> Iterator[tuple[int, list[str]]]:
        line = 1
        for cells in reader:
            row_line, line = line, reader.line_num + 1
            if any(c.strip() for c in cells):
                yield row_line, [c.strip() for c in cells]

    rows = non_empty()
    ahead = list(itertools.islice(rows, LOOKAHEAD))
    if not ahead:
        return
    first = ahead[0][1]
    has_address = any("@" in c for c in first)
    later = [cells for _, cells in ahead[1:]]
    if any(c.lower() in _ADDRESS_HEADERS for c in first) or (
        not has_address and any("@" in c for cells in later for c in cells)
    ):
        address_col, name_col = _header_columns(first, later)
        ahead = ahead[1:]
    else:
        address_col = next((i for i, c in enumerate(first) if "@" in c), 0)
        name_col = 1 if address_col == 0 else 0
    for row_line, cells in itertools.chain(ahead, rows):
        address = cells[address_col] if address_col < len(cells) else ""
        name = cells[name_col] if 0 <= name_col < len(cells) else ""
        yield row_line, address, name


def _existing(conn: Connection, keys: Iterable[str], stamp: datetime) -> dict[str, tuple]:
    """address_key → (status, added by this import) for the keys already stored.

    Every row an import adds carries the import's own ``created_at`` stamp, so a later
    chunk tells "earlier in this file" from "already listed" without a set of them all.
    """
    keys = list(keys)
    found: dict[str, tuple[str, bool]] = {}
    for start in range(0, len(keys), 500):
        result = conn.execute(
            select(subscribers.c.address_key, subscribers.c.status, subscribers.c.created_at).where(
                subscribers.c.address_key.in_(keys[start : start + 500])
            )
        )
        found.update({key: (status, _utc(created) == stamp) for key, status, created in result})
    return found


def import_csv(
    engine: Engine, path: str | Path, *, source: str | None = None, status: str = ACTIVE
) -> ImportReport:
    """Import every good row of a CSV file; report the bad, duplicate and suppressed ones.

    The file is read, validated and inserted in chunks (one transaction for the
    whole file), so memory stays flat however long the list is. An address met
    earlier in the same file is found in the database, not in a set of them all.
    """
    _check_status(status)
    path = Path(path)
    source = source or f"import:{path.name}"
    stamp = now()  # every row of this import is created at this instant
    report = ImportReport()
    with path.open(newline="", encoding="utf-8-sig") as handle, engine.begin() as conn:
        rows = _csv_rows(handle)
        while chunk := list(itertools.islice(rows, CHUNK)):
            report.imported += _import_chunk(conn, chunk, status, source, stamp, report)
    report.duplicates.sort(key=lambda r: r.line)
    report.suppressed.sort(key=lambda r: r.line)
    if report.imported and engine.dialect.name == "postgresql":
        # Fresh statistics for the planner: without them it read every active subscriber
        # past a page's start (a bitmap scan, then a sort) for each page of an edition,
        # instead of walking the (status, id) index a page at a time.
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE subscribers")
    return report


def _import_chunk(conn, chunk, status: str, source: str, stamp, report: ImportReport) -> int:
    fresh: dict[str, tuple[int, dict]] = {}
    for line, raw, name in chunk:
        if not raw:
            report.bad.append(BadRow(line, raw, "no address"))
            continue
        try:
            address = normalize(raw)
        except InvalidAddress as exc:
            report.bad.append(BadRow(line, raw, str(exc)))
            continue
        if _key(address) in fresh:
            report.duplicates.append(SkippedRow(line, address, "earlier in this file"))
            continue
        fresh[_key(address)] = (line, _new_row(address, name, status, source, None, stamp))
    if not fresh:
        return 0
    # One statement inserts the chunk; the addresses it skipped are already listed. Looking
    # every address up first made PostgreSQL scan the growing table once per 500 rows.
    insert_new = _insert_for(conn).on_conflict_do_nothing(index_elements=["address_key"])
    added = set(
        conn.execute(
            insert_new.returning(subscribers.c.address_key),
            [row for _, row in fresh.values()],
        ).scalars()
    )
    skipped = [key for key in fresh if key not in added]
    for key, (known, this_import) in _existing(conn, skipped, stamp).items():
        line, row = fresh[key]
        if this_import:
            report.duplicates.append(SkippedRow(line, row["address"], "earlier in this file"))
            continue
        target = report.suppressed if known in SUPPRESSED else report.duplicates
        target.append(SkippedRow(line, row["address"], known))
    return len(added)


def _insert_for(conn: Connection):
    """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(subscribers)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading ``'``.
    (Addresses such as ``=cmd|' /C calc'!A0@example.org`` are valid, and so are names.)"""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def export_csv(
    engine: Engine, out: IO[str], status: str | None = None, *, raw: bool = False
) -> int:
    """Write the subscribers (all, or one status) as CSV; return how many rows.

    Cells that a spreadsheet would run as a formula are neutralised (``spreadsheet_safe``)
    unless ``raw``."""
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for subscriber in iter_subscribers(engine, status):  # a million rows: never all in memory
        values = []
        for column in EXPORT_COLUMNS:
            value = getattr(subscriber, column)
            text = value.isoformat() if isinstance(value, datetime) else value or ""
            values.append(text if raw else spreadsheet_safe(text))
        writer.writerow(values)
        count += 1
    return count


# -- recipients of an edition -----------------------------------------------------


def link_secret(settings) -> str:
    """The key that signs subscriber links: ``[web] secret``, else a per-installation key."""
    web = settings.web
    secret = web.get("secret") if isinstance(web, dict) else getattr(web, "secret", None)
    if secret:
        return secret.get_secret_value() if hasattr(secret, "get_secret_value") else str(secret)
    return tokens.local_secret(settings.data_dir)


def recipient(
    settings, address: str, edition_id: str, name: str = "", secret: str | None = None
) -> Recipient:
    """One address's Recipient with its own signed unsubscribe link and the archive link."""
    return _recipient(
        normalize(address), name, _links(settings, edition_id), secret or link_secret(settings)
    )


def _links(settings, edition_id: str) -> tuple[str, str]:
    base = settings.publication.web_base_url.rstrip("/")
    return f"{base}/u/", f"{base}/archive/{quote(edition_id, safe='')}"


def _recipient(address: str, name: str, links: tuple[str, str], secret: str) -> Recipient:
    unsubscribe, view = links
    return Recipient(
        email=address,
        name=name,
        unsubscribe_url=unsubscribe + tokens.sign(secret, "unsubscribe", address),
        view_url=view,
    )


PAGE = 1000  # subscribers read per query when streaming an edition's recipients


class ActiveRecipients:
    """Every active subscriber as a Recipient of one edition, streamed in pages.

    Iterating reads the subscribers table a page at a time (keyset on id), so
    nothing proportional to the list is held in memory. Stored addresses were
    validated and normalized on the way in; they are used as they are. Each
    iteration starts a fresh read; ``len()`` counts with one query. It pickles as
    where to read and how to sign (``portable``): a second process can stream it.
    """

    portable = True

    def __init__(self, engine: Engine, settings, edition_id: str, page: int = PAGE) -> None:
        links = _links(settings, edition_id)
        self._setup(engine, links, link_secret(settings), page)

    def _setup(self, engine: Engine, links: tuple[str, str], secret: str, page: int) -> None:
        self.engine = engine
        self.unsubscribe, self.view = links
        self.secret = secret
        self.sign = tokens.Signer(secret, "unsubscribe").sign
        self.page = page

    def __reduce__(self):
        url = self.engine.url.render_as_string(hide_password=False)
        return _reopened, (url, (self.unsubscribe, self.view), self.secret, self.page)

    def _as_recipient(self, row) -> Recipient:
        _, address, name = row
        return Recipient(address, name, self.unsubscribe + self.sign(address), self.view)

    def __len__(self) -> int:
        with self.engine.connect() as conn:
            return conn.scalar(
                select(func.count()).select_from(subscribers).where(subscribers.c.status == ACTIVE)
            )

    def __iter__(self) -> Iterator[Recipient]:
        query = (
            select(subscribers.c.id, subscribers.c.address, subscribers.c.name)
            .where(subscribers.c.status == ACTIVE)
            .order_by(subscribers.c.id)
            .limit(self.page)
        )
        last = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(query.where(subscribers.c.id > last)).all()
            yield from map(self._as_recipient, rows)
            if len(rows) < self.page:
                return
            last = rows[-1][0]


def _reopened(url: str, links: tuple[str, str], secret: str, page: int) -> ActiveRecipients:
    """An ActiveRecipients unpickled in another process, on its own engine."""
    stream = ActiveRecipients.__new__(ActiveRecipients)
    stream._setup(reader_engine(url), links, secret, page)
    return stream


def recipients_for(engine: Engine, settings, edition_id: str) -> list[Recipient]:
    """Every active subscriber as a Recipient of this edition (a list: for small lists)."""
    return list(ActiveRecipients(engine, settings, edition_id))
