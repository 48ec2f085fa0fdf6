"""The subscriber store (SQLite and PostgreSQL), its CLI, and who the next edition reaches."""

from __future__ import annotations

import io
from datetime import date

import pytest
from briefcast.channels.base import ChannelContext
from briefcast.channels.smtp_mail import SmtpChannel, SmtpSettings
from fakes.smtp_sink import SmtpSink
from support import GAZETTE, gazette_settings, make_edition
from typer.testing import CliRunner

from briefcast import subscribers, tokens
from briefcast.cli_subscribers import app as cli
from briefcast.config import Dispatch, Settings
from briefcast.db import get_engine
from briefcast.dispatch import dispatch_channel
from briefcast.ledger import Ledger
from briefcast.models import RenderedEdition
from briefcast.subscribers import ACTIVE, BOUNCED, COMPLAINED, PENDING, UNSUBSCRIBED

PUBLICATION = {**GAZETTE, "web_base_url": "https://news.gazette.example/"}


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        return get_engine(f"sqlite:///{tmp_path / 'subscribers.db'}")
    return get_engine(request.getfixturevalue("postgres_url"))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return gazette_settings(
        tmp_path, database="subscribers.db", web_base_url="https://news.gazette.example/"
    )


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_import_keeps_good_rows_and_reports_each_bad_one_by_line(engine, tmp_path):
    subscribers.add(engine, "known@example.org", source="web")
    csv_path = write(
        tmp_path / "list.csv",
        "Email,Name\n"
        "ann@example.org,Ann\n"
        "not-an-address,Bob\n"
        "\n"
        "cy@EXAMPLE.org,Cy\n"
        ",No address\n"
        "ANN@example.org,Ann again\n"
        "known@example.org,Known\n"
        "dee@exa mple.org,Dee\n"
        '"eve@example.org","Eve, Esq."\n',
    )

    report = subscribers.import_csv(engine, csv_path)

    assert report.imported == 3
    assert [(b.line, b.value) for b in report.bad] == [
        (3, "not-an-address"),
        (6, ""),
        (9, "dee@exa mple.org"),
    ]
    assert "@-sign" in report.bad[0].reason and report.bad[1].reason == "no address"
    assert [(d.line, d.address) for d in report.duplicates] == [
        (7, "ANN@example.org"),
        (8, "known@example.org"),
    ]
    listed = {s.address: s for s in subscribers.list_subscribers(engine)}
    assert set(listed) == {
        "known@example.org",
        "ann@example.org",
        "cy@example.org",
        "eve@example.org",
    }
    assert listed["cy@example.org"].source == "import:list.csv"
    assert listed["eve@example.org"].name == "Eve, Esq."
    assert listed["ann@example.org"].status == ACTIVE
    assert listed["ann@example.org"].confirmed_at is not None
    assert listed["ann@example.org"].created_at.tzinfo is not None


def test_a_file_without_header_is_address_then_name(engine, tmp_path):
    report = subscribers.import_csv(
        engine, write(tmp_path / "plain.csv", "a@example.org,A\nb@example.org\n")
    )
    assert report.imported == 2
    assert [(s.address, s.name) for s in subscribers.active(engine)] == [
        ("a@example.org", "A"),
        ("b@example.org", ""),
    ]


def test_an_excel_export_from_a_european_newsroom(engine, tmp_path):
    """Semicolons, a BOM, CRLF, a header in Spanish, quoted cells, IDN domains."""
    csv_path = tmp_path / "lectores.csv"
    csv_path.write_bytes(
        "\r\n".join(
            [
                "",
                "Correo electrónico;Nombre",
                "maria@EXAMPLE.ORG;María López",
                "",
                '"quoted@example.org";"Smith, John"',
                "Maria@example.org;dup in case",
                "jose@münchen.example;José",
                "jose@xn--mnchen-3ya.example;the same, in punycode",
                ";no address",
                "not-an-email;bad",
                "",
            ]
        ).encode("utf-8-sig")
    )
    report = subscribers.import_csv(engine, csv_path)
    assert [(s.address, s.name) for s in subscribers.active(engine)] == [
        ("maria@example.org", "María López"),
        ("quoted@example.org", "Smith, John"),
        ("jose@münchen.example", "José"),
    ]
    assert [(d.line, d.address) for d in report.duplicates] == [
        (6, "Maria@example.org"),
        (8, "jose@münchen.example"),
    ]
    assert [(b.line, b.value) for b in report.bad] == [(9, ""), (10, "not-an-email")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("E-Mail-Adresse,Vorname\nanna@beispiel.de,Anna\n", ("anna@beispiel.de", "Anna")),
        ("Nom\tCourriel\nJeanne\tjeanne@exemple.fr\n", ("jeanne@exemple.fr", "Jeanne")),
        ("id;email;name\n7;ann@example.org;Ann\n", ("ann@example.org", "Ann")),
        ("Ann Smith;ann@example.org\n", ("ann@example.org", "Ann Smith")),
    ],
)
def test_the_address_column_is_found_without_an_english_header(engine, tmp_path, text, expected):
    report = subscribers.import_csv(engine, write(tmp_path / "list.csv", text))
    assert report.bad == [] and report.imported == 1
    assert [(s.address, s.name) for s in subscribers.active(engine)] == [expected]


@pytest.mark.parametrize("status", [UNSUBSCRIBED, BOUNCED, COMPLAINED])
def test_suppressed_addresses_are_never_reactivated(engine, tmp_path, status):
    subscribers.add(engine, "gone@example.org")
    before = subscribers.set_status(engine, "gone@example.org", status, reason="provider said so")
    stamp = getattr(before, f"{status}_at")
    assert stamp is not None and before.reason == "provider said so"

    report = subscribers.import_csv(
        engine, write(tmp_path / "again.csv", "email\nGONE@example.org\n")
    )
    assert report.imported == 0
    assert [(s.line, s.address, s.status) for s in report.suppressed] == [
        (2, "GONE@example.org", status)
    ]
    result = subscribers.add(engine, "gone@example.org")
    assert not result.created and result.subscriber.status == status
    assert subscribers.get(engine, "gone@example.org").status == status
    assert subscribers.active(engine) == []


def test_status_changes_are_stamped_once(engine):
    subscribers.add(engine, "p@example.org", status=PENDING, source="web")
    pending = subscribers.get(engine, "P@example.org")
    assert pending.status == PENDING and pending.confirmed_at is None
    confirmed = subscribers.set_status(engine, "p@example.org", ACTIVE, "confirmed")
    assert confirmed.confirmed_at is not None
    first = subscribers.set_status(engine, "p@example.org", UNSUBSCRIBED, "one-click")
    second = subscribers.set_status(engine, "p@example.org", UNSUBSCRIBED, "one-click again")
    assert second.unsubscribed_at == first.unsubscribed_at
    assert second.updated_at >= first.updated_at
    with pytest.raises(subscribers.UnknownSubscriber):
        subscribers.set_status(engine, "nobody@example.org", BOUNCED)
    with pytest.raises(ValueError, match="unknown status"):
        subscribers.set_status(engine, "p@example.org", "deleted")


def test_remove_keeps_a_suppression_row_even_for_unknown_addresses(engine, tmp_path):
    subscribers.add(engine, "kept@example.org")
    assert subscribers.remove(engine, "kept@example.org").status == UNSUBSCRIBED
    never = subscribers.remove(engine, "never@example.org")
    assert never.status == UNSUBSCRIBED and never.unsubscribed_at is not None
    report = subscribers.import_csv(
        engine, write(tmp_path / "l.csv", "email\nnever@example.org\nkept@example.org\n")
    )
    assert report.imported == 0 and len(report.suppressed) == 2


def test_export_writes_every_status_and_timestamp(engine):
    subscribers.add(engine, "a@example.org", name="A")
    subscribers.add(engine, "b@example.org")
    subscribers.set_status(engine, "b@example.org", BOUNCED, "550 unknown user")
    out = io.StringIO()
    assert subscribers.export_csv(engine, out) == 2
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("address,name,status,source,reason,created_at")
    assert lines[1].startswith("a@example.org,A,active,cli,")
    assert "b@example.org,,bounced,cli,550 unknown user," in lines[2]
    only = io.StringIO()
    assert subscribers.export_csv(engine, only, BOUNCED) == 1


def test_recipients_are_the_active_subscribers_with_signed_links(engine, settings):
    for address in ["a@example.org", "b@example.org", "c@example.org", "d@example.org"]:
        subscribers.add(engine, address, name=address[0].upper())
    subscribers.add(engine, "p@example.org", status=PENDING)
    subscribers.set_status(engine, "b@example.org", UNSUBSCRIBED)
    subscribers.set_status(engine, "c@example.org", BOUNCED)
    subscribers.set_status(engine, "d@example.org", COMPLAINED)

    (only,) = subscribers.recipients_for(engine, settings, "2026-11-20")

    assert (only.email, only.name) == ("a@example.org", "A")
    assert only.view_url == "https://news.gazette.example/archive/2026-11-20"
    prefix = "https://news.gazette.example/u/"
    assert only.unsubscribe_url.startswith(prefix)
    token = only.unsubscribe_url.removeprefix(prefix)
    secret = subscribers.link_secret(settings)
    assert tokens.verify(secret, "unsubscribe", token) == "a@example.org"
    with pytest.raises(tokens.BadToken):
        tokens.verify("another-secret", "unsubscribe", token)


def test_the_configured_web_secret_signs_the_links(tmp_path, monkeypatch):
    monkeypatch.setenv("BRIEFCAST_TEST_LINK_SECRET", "s3cret-for-links")
    settings = Settings.model_validate(
        {
            "publication": PUBLICATION,
            "data_dir": str(tmp_path / "data"),
            "web": {"secret": {"env": "BRIEFCAST_TEST_LINK_SECRET"}},
        }
    )
    assert subscribers.link_secret(settings) == "s3cret-for-links"
    link = subscribers.recipient(settings, "a@example.org", "x").unsubscribe_url
    assert tokens.verify("s3cret-for-links", "unsubscribe", link.rsplit("/", 1)[1])
    assert not (tmp_path / "data" / "link-secret").exists()


def edition(edition_id: str) -> RenderedEdition:
    return make_edition(
        edition_id,
        edition_date=date.fromisoformat(edition_id),
        subject="Brief",
        html='<a href="%%unsubscribe_url%%">Unsubscribe</a>',
        text="Unsubscribe: %%unsubscribe_url%%",
    )


def test_suppressed_addresses_receive_nothing_in_the_next_edition(settings):
    engine = get_engine(settings.database_url)
    everyone = [f"r{i}@example.org" for i in range(6)]
    for address in everyone:
        subscribers.add(engine, address)
    ledger = Ledger(engine)
    policy = Dispatch(max_attempts=2, backoff_seconds=0)

    def send(edition_id: str, sink: SmtpSink) -> list[str]:
        before = len(sink.received)
        adapter = SmtpChannel(
            SmtpSettings(host="127.0.0.1", port=sink.port, security="plain"),
            ChannelContext(
                publication=settings.publication,
                data_dir=settings.data_dir,
                recipients=subscribers.recipients_for(engine, settings, edition_id),
            ),
        )
        dispatch_channel(adapter, "smtp", edition(edition_id), ledger, policy)
        return sorted(a for r in sink.received[before:] for a in r.rcpt_tos)

    with SmtpSink() as sink:
        assert send("2026-11-20", sink) == everyone
        subscribers.remove(engine, "r1@example.org", reason="one-click")
        subscribers.set_status(engine, "r2@example.org", BOUNCED, "550 5.1.1")
        subscribers.set_status(engine, "r3@example.org", COMPLAINED, "spamreport")
        assert send("2026-11-21", sink) == ["r0@example.org", "r4@example.org", "r5@example.org"]


# -- the CLI --------------------------------------------------------------------


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def cli_config(tmp_path):
    """The smallest briefcast.toml the CLI accepts, its data in tmp_path/data."""
    return write(
        tmp_path / "briefcast.toml",
        f'data_dir = "{tmp_path / "data"}"\n'
        "[publication]\n"
        'name = "T"\nsite_url = "https://t.example"\npostal_address = "x"\n'
        'sender_email = "brief@t.example"\n',
    )


def test_cli_import_add_remove_list_export(tmp_path):
    config = cli_config(tmp_path)
    csv_path = write(tmp_path / "people.csv", "email,name\na@example.org,A\nbad-row,B\n")
    c = ("--config", str(config))

    result = run("import", str(csv_path), *c)
    assert result.exit_code == 1  # bad rows are worth a non-zero exit; good rows still went in
    assert "1 imported" in result.output and "1 bad rows" in result.output
    assert f"{csv_path}:3: bad address 'bad-row'" in result.output

    assert run("add", "b@example.org", "--name", "Bee", *c).exit_code == 0
    assert run("remove", "a@example.org", *c).output.strip() == "a@example.org unsubscribed"
    result = run("add", "a@example.org", *c)
    assert result.exit_code == 1 and "not reactivated" in result.output
    assert run("add", "nonsense", *c).exit_code == 2

    listed = run("list", "--status", "active", *c)
    assert listed.exit_code == 0 and "b@example.org\tBee\tactive\tcli" in listed.output
    assert "a@example.org" not in listed.output
    assert run("list", "--status", "gone", *c).exit_code == 2

    out = tmp_path / "export.csv"
    assert run("export", str(out), *c).exit_code == 0
    exported = out.read_text().splitlines()
    assert len(exported) == 3 and exported[1].startswith("a@example.org,A,unsubscribed,")


def test_cli_import_of_a_windows_code_page_file_says_what_to_do(tmp_path):
    config = cli_config(tmp_path)
    csv_path = tmp_path / "excel.csv"
    csv_path.write_bytes("email;name\r\nines@example.org;Inês Duarte\r\n".encode("cp1252"))
    result = run("import", str(csv_path), "--config", str(config))
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {csv_path} is not UTF-8 text (it has the byte 0xea); nothing was imported. "
        'Save it as "CSV UTF-8" and import it again.'
    )


def test_cli_reports_a_broken_config(tmp_path):
    result = run("list", "--config", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2 and "config file not found" in result.output


def test_a_long_file_is_imported_in_chunks_and_duplicates_across_chunks_are_found(
    engine, tmp_path, monkeypatch
):
    monkeypatch.setattr(subscribers, "CHUNK", 3)  # a million rows, in miniature
    subscribers.add(engine, "known@example.org")
    subscribers.remove(engine, "gone@example.org")
    lines = [f"r{n}@example.org" for n in range(7)]
    lines[5] = "R1@example.org"  # the same as line 3, two chunks later
    lines.insert(6, "known@example.org")
    lines.insert(2, "gone@example.org")
    report = subscribers.import_csv(engine, write(tmp_path / "long.csv", "\n".join(lines)))

    assert report.imported == 6
    assert [(d.line, d.address, d.status) for d in report.duplicates] == [
        (7, "R1@example.org", "earlier in this file"),
        (8, "known@example.org", ACTIVE),
    ]
    assert [(s.line, s.address) for s in report.suppressed] == [(3, "gone@example.org")]
    imported = [s for s in subscribers.active(engine) if s.address != "known@example.org"]
    assert [s.address for s in imported] == [f"r{n}@example.org" for n in (0, 1, 2, 3, 4, 6)]
    assert {s.source for s in imported} == {"import:long.csv"}


def test_active_recipients_are_streamed_in_pages_by_id(engine, settings):
    for n in range(7):
        subscribers.add(engine, f"r{n}@example.org", name=f"R {n}")
    subscribers.remove(engine, "r3@example.org")
    stream = subscribers.ActiveRecipients(engine, settings, "2026-11-20", page=2)
    assert len(stream) == 6
    assert [r.email for r in stream] == [f"r{n}@example.org" for n in (0, 1, 2, 4, 5, 6)]
    assert list(stream) == subscribers.recipients_for(engine, settings, "2026-11-20")
    secret = subscribers.link_secret(settings)
    for recipient in stream:
        token = recipient.unsubscribe_url.rsplit("/", 1)[1]
        assert tokens.verify(secret, "unsubscribe", token) == recipient.email
