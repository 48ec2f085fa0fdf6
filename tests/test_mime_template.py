"""The SMTP channel's pre-rendered message says what build_email says, for any recipient."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest
from briefcast.channels.email_message import ascii_address, build_email
from briefcast.channels.mime_template import MimeTemplate
from support import gazette_settings, make_edition

from briefcast import subscribers

EDITION = make_edition(
    "2026-11-20",
    subject="A long subject about the harbour, the ferries and the café that keeps going — sexta",
    html=(
        '<p style="margin:0">Olá %%first_name%%, 50% off &amp; more=yes</p>'
        + "<p>Story with a long line " * 60
        + '</p><a href="%%view_url%%">View</a> · <a href="%%unsubscribe_url%%">Unsubscribe</a>'
        + "\n<pre>  trailing spaces   </pre>\n"
    ),
    text="Olá %%first_name%%,\n\n" + "A line. " * 30 + "\nLeave: %%unsubscribe_url%% %%odd%%\n",
)
PEOPLE = [
    ("reader@example.org", "Reader 1"),
    ("ana@example.org", "Conceição Ribeiro"),
    ("bo@example.org", 'Bo "The Boss" Lee, Jr.'),
    ("x@example.org", ""),
    ("leitor@bücher.example", "Zoë"),
    ("jürgen@bücher.example", "Jürgen =?utf-8?q?x?="),
]


def parse(raw: bytes):
    return BytesParser(policy=policy.default).parsebytes(raw)


@pytest.mark.parametrize("test_send", [False, True])
@pytest.mark.parametrize(("address", "name"), PEOPLE)
def test_same_headers_and_content_as_build_email(tmp_path, address, name, test_send):
    settings = gazette_settings(
        tmp_path, web_base_url="https://news.gazette.example", reply_to="desk@gazette.example"
    )
    publication = settings.publication
    recipient = subscribers.recipient(settings, address, EDITION.edition_id, name)
    international = not ascii_address(address).isascii()
    options = {"test": test_send, "unsubscribe_mailto": "leave@gazette.example"}
    old = build_email(EDITION, recipient, publication, **options)
    expected = parse(old.as_bytes(policy=old.policy.clone(linesep="\r\n", utf8=international)))

    message_id, raw = MimeTemplate(EDITION, publication, **options).render(recipient, international)
    got = parse(raw)

    assert got["Message-ID"] == message_id
    skip = {"Message-ID", "Date", "Content-Type"}
    assert [(k, str(v)) for k, v in got.items() if k not in skip] == [
        (k, str(v)) for k, v in expected.items() if k not in skip
    ]
    assert got.get_content_type() == "multipart/alternative"
    for kind in ("plain", "html"):
        assert got.get_body((kind,)).get_content() == expected.get_body((kind,)).get_content()
    assert all(not part.defects for part in got.walk())
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
