"""The SMTP channel's pre-rendered message says what build_email says, for any recipient."""

from __future__ import annotations

import binascii
from email import policy
from email.parser import BytesParser

import pytest
from briefcast.channels.email_message import ascii_address, build_email
from briefcast.channels.mime_template import MimeTemplate, _qp_soft
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


def test_dot_stuffed_message_is_the_message_as_data_carries_it(tmp_path):
    """Every line that starts with "." (fixed, personal or a value) is doubled, nothing else."""
    edition = make_edition(
        "2026-11-20",
        html='<p>.%%first_name%%</p>\n.<a href="%%unsubscribe_url%%">Leave</a>\n',
        text=".Hello\n%%first_name%%, welcome\n" + "x" * 75 + ".%%first_name%%\n..\n",
    )
    settings = gazette_settings(tmp_path, web_base_url="https://news.gazette.example")
    recipient = subscribers.recipient(settings, "dot@example.org", edition.edition_id, ".Dot Lee")
    template = MimeTemplate(edition, settings.publication, dot_stuffed=True)

    _, stuffed = template.render(recipient)

    lines = stuffed.split(b"\r\n")
    assert all(line == b"" or not line.startswith(b".") or line.startswith(b"..") for line in lines)
    assert sum(line.startswith(b"..") for line in lines) >= 4
    # what the server keeps of it (RFC 5321 4.5.2): each line's first "." dropped
    received = parse(b"\r\n".join(line[1:] if line[:1] == b"." else line for line in lines))
    text = received.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text == ".Hello\n.Dot, welcome\n" + "x" * 75 + "..Dot\n..\n"
    html = received.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert html == f'<p>..Dot</p>\n.<a href="{recipient.unsubscribe_url}">Leave</a>\n'
    assert all(not part.defects for part in received.walk())


def test_a_long_personal_line_is_encoded_once_and_stays_within_76_characters(tmp_path):
    long_line = "<td>" + "Harbour news &amp; more. " * 400 + '<a href="%%view_url%%">View</a></td>'
    edition = make_edition("2026-11-20", html=long_line + "\n<p>end</p>\n", text="Hi\n")
    settings = gazette_settings(tmp_path, web_base_url="https://news.gazette.example")
    recipient = subscribers.recipient(settings, "long@example.org", edition.edition_id, "Ana")

    _, raw = MimeTemplate(edition, settings.publication).render(recipient)

    html = parse(raw).get_body(("html",)).get_content().replace("\r\n", "\n")
    assert html == long_line.replace("%%view_url%%", recipient.view_url) + "\n<p>end</p>\n"
    body = raw.split(b'Content-Type: text/html; charset="utf-8"', 1)[1].split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "trailing space ",
        "tab\t",
        "=3D and ?=",
        "Conceição €",
        "x" * 75 + "é",
        "a\nb",
        "a\r\n.b\r",
        "",
    ],
)
def test_a_value_between_soft_line_breaks_decodes_to_itself(value):
    """Each personal value is encoded on lines of its own; decoded, the line is unchanged."""
    encoded = _qp_soft(value)
    assert encoded.endswith(b"=\r\n")
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
    expected = value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    assert binascii.a2b_qp(encoded).decode() == expected
