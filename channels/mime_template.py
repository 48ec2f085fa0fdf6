"""One edition's email as wire bytes, rendered once and filled in per recipient.

Building and serialising a MIME message with the ``email`` package costs more
than handing it to a local mail server, so a channel that sends thousands of
messages renders the edition once: the headers every message shares are folded
once (in an ASCII and an SMTPUTF8 flavour), and both bodies are encoded once as
quoted-printable, with the recipient placeholders (``%%unsubscribe_url%%``...)
kept aside. Quoted-printable encodes each line on its own, so the lines without
a placeholder are encoded once and reused byte for byte; a line with one is
filled and encoded for each recipient (HTML-escaped in the HTML part, UTF-8
and then quoted-printable, so a name like "Conceição" arrives intact). The
boundary starts with ``=_``, which quoted-printable text can never contain.

The result matches :func:`briefcast.channels.email_message.build_email`: the same headers
in the same order, one-click ``List-Unsubscribe`` written verbatim, a
multipart/alternative with the text and HTML parts.
"""

from __future__ import annotations

import binascii
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.utils import format_datetime, make_msgid
from html import escape as html_escape

from briefcast.channels.base import Recipient
from briefcast.channels.email_message import (
    MAIL_POLICY,
    ascii_address,
    list_unsubscribe,
    recipient_values,
    subject_for,
)

from briefcast.models import RenderedEdition
from briefcast.render.placeholders import KNOWN

_TOKEN = re.compile(r"%%([a-z_]+)%%")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # as bytes.splitlines(), which the email package uses
# A display name written as it is: atoms separated by single spaces (RFC 5322 atext, less
# "=" and "?", which could read as an encoded word); anything else goes through the policy.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+\-/^_`{|}~]+( [A-Za-z0-9!#$%&'*+\-/^_`{|}~]+)*")
_POLICIES = {
    False: MAIL_POLICY.clone(linesep="\r\n"),
    True: MAIL_POLICY.clone(linesep="\r\n", utf8=True),
}


def _qp(line: str) -> bytes:
    """One line (no line break) as quoted-printable, ending in CRLF."""
    return binascii.b2a_qp(line.encode("utf-8") + b"\r\n", istext=True)


def _qp_soft(text: str) -> bytes:
    """Part of a line as quoted-printable, ending in a soft line break ("=" CRLF)."""
    if "\r" in text or "\n" in text:  # a value with a line break: CRLF, as b2a_qp then writes
        text = _LINE_BREAK.sub("\r\n", text)
    # "X" is never escaped and holds the place of the "=": no line grows past 76
    return binascii.b2a_qp(text.encode("utf-8") + b"X\r\n", istext=True)[:-3] + b"=\r\n"


def _dot_stuffed(chunk: bytes) -> bytes:
    """A chunk of whole lines as SMTP's DATA carries it: a leading "." doubled."""
    stuffed = chunk.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


@dataclass(frozen=True)
class _Filled:
    """A line with placeholders: encoded literal text and placeholder names, in order.

    A soft line break after each piece lets the literal text be encoded once: only
    the values are encoded per recipient, however long the line (an email's HTML
    can put 30 KB on one line). Decoded, the line is the same.
    """

    pieces: tuple[bytes | str, ...]  # bytes: encoded text; str: a placeholder name
    dot_stuffed: bool  # the values too, as the text was

    @classmethod
    def build(cls, texts_and_names: list[str], dot_stuffed: bool) -> _Filled:
        pieces: list[bytes | str] = []
        for index, piece in enumerate(texts_and_names):
            if index % 2:
                pieces.append(piece)
            elif piece:
                encoded = _qp_soft(piece)
                pieces.append(_dot_stuffed(encoded) if dot_stuffed else encoded)
        pieces.append(b"\r\n")  # the line's own (hard) break
        return cls(tuple(pieces), dot_stuffed)

    def render(self, values: dict[str, str], html: bool) -> bytes:
        out = []
        for piece in self.pieces:
            if isinstance(piece, bytes):
                out.append(piece)
            elif value := values.get(piece, ""):
                encoded = _qp_soft(html_escape(value, quote=True) if html else value)
                out.append(_dot_stuffed(encoded) if self.dot_stuffed else encoded)
        return b"".join(out)


def _encode_body(text: str, dot_stuffed: bool) -> list[bytes | _Filled]:
    """Quoted-printable chunks of ``text``: bytes where fixed, _Filled where personal."""
    chunks: list[bytes | _Filled] = []
    fixed: list[bytes] = []
    lines = _LINE_BREAK.split(text)
    if lines[-1] == "":
        lines.pop()
    for line in lines:
        pieces = _TOKEN.split(line)
        if not any(name in KNOWN for name in pieces[1::2]):
            fixed.append(_qp(line))
            continue
        if fixed:
            chunks.append(_joined(fixed, dot_stuffed))
            fixed = []
        # unknown %%names%% stay literal, as personalize() leaves them
        merged: list[str] = [pieces[0]]
        for name, after in zip(pieces[1::2], pieces[2::2], strict=True):
            if name in KNOWN:
                merged += [name, after]
            else:
                merged[-1] += f"%%{name}%%{after}"
        chunks.append(_Filled.build(merged, dot_stuffed))
    if fixed:
        chunks.append(_joined(fixed, dot_stuffed))
    return chunks


def _joined(lines: list[bytes], dot_stuffed: bool) -> bytes:
    chunk = b"".join(lines)
    return _dot_stuffed(chunk) if dot_stuffed else chunk


def _fold(policy, name: str, value) -> bytes:
    return policy.fold_binary(*policy.header_store_parse(name, value))


class MimeTemplate:
    """Build once per edition; ``render(recipient)`` gives one message's Message-ID and bytes.

    ``dot_stuffed``: the messages as SMTP's DATA carries them, up to the final ".": each
    line's leading "." doubled (no header line starts with one), done once here.
    """

    def __init__(
        self,
        edition: RenderedEdition,
        publication,
        *,
        test: bool = False,
        unsubscribe_mailto: str | None = None,
        sender: str | None = None,
        sender_name: str | None = None,
        dot_stuffed: bool = False,
    ) -> None:
        self.sender = sender or publication.sender_email
        self.mailto = unsubscribe_mailto
        self.msgid_domain = self.sender.rpartition("@")[2] or None
        self.msgid_idstring = f"briefcast.{edition.edition_id}"
        name = publication.sender_name if sender_name is None else sender_name
        self._head: dict[bool, tuple[bytes, bytes, bytes]] = {}
        self._from = Address(name, addr_spec=self.sender)
        self._reply_to = publication.reply_to
        self._subject = subject_for(edition, test)
        self._edition_id = edition.edition_id
        for policy in _POLICIES.values():  # refuse a bad header now, not at the first send
            self._heads(policy)
        boundary = f"=_briefcast_{secrets.token_hex(16)}"
        part = (
            f'--{boundary}\r\nContent-Type: text/%s; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
        self._mime = (
            f"MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n"
            f' boundary="{boundary}"\r\n\r\n'
        ).encode()
        self._text_head = (part % "plain").encode()
        self._html_head = b"\r\n" + (part % "html").encode()
        self._end = f"\r\n--{boundary}--\r\n".encode()
        self._text = _encode_body(edition.email.text, dot_stuffed)
        self._html = _encode_body(edition.email.html, dot_stuffed)
        self._date = (0, b"")

    def _heads(self, policy) -> tuple[bytes, bytes, bytes]:
        """The fixed headers before To, between To and List-Unsubscribe, and after it."""
        key = policy.utf8
        if key not in self._head:
            before = _fold(policy, "From", self._from)
            between = _fold(policy, "Reply-To", self._reply_to) if self._reply_to else b""
            between += _fold(policy, "Subject", self._subject)
            after = _fold(policy, "X-Briefcast-Edition", self._edition_id)
            self._head[key] = (before, between, after)
        return self._head[key]

    def _unsubscribe(self, recipient: Recipient, policy) -> bytes:
        headers = list_unsubscribe(recipient, self.mailto)
        if not headers:
            return b""
        value = headers["List-Unsubscribe"]
        if value.isascii() and "\r" not in value and "\n" not in value:
            line = f"List-Unsubscribe: {value}\r\n".encode()  # verbatim, as MAIL_POLICY writes it
        else:
            line = _fold(policy, "List-Unsubscribe", value)
        return line + b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"

    def _date_header(self) -> bytes:
        second = int(time.time())
        if self._date[0] != second:
            stamp = format_datetime(datetime.fromtimestamp(second, UTC))
            self._date = (second, f"Date: {stamp}\r\n".encode())
        return self._date[1]

    def check(self, recipient: Recipient) -> None:
        """Raise ValueError for a recipient whose headers cannot be written."""
        local, _, domain = ascii_address(recipient.email).rpartition("@")
        Address(recipient.name, username=local, domain=domain)
        for value in list_unsubscribe(recipient, self.mailto).values():
            if "\r" in value or "\n" in value:
                raise ValueError("Header values may not contain linefeed or carriage return")

    def _to(self, recipient: Recipient, policy) -> bytes:
        local, _, domain = ascii_address(recipient.email).rpartition("@")
        name = recipient.name
        if local.isascii() and domain.isascii() and (not name or _PLAIN_NAME.fullmatch(name)):
            line = f"To: {name} <{local}@{domain}>\r\n" if name else f"To: {local}@{domain}\r\n"
            if len(line) <= 80:
                return line.encode()
        return _fold(policy, "To", Address(name, username=local, domain=domain))

    def render(self, recipient: Recipient, international: bool = False) -> tuple[str, bytes]:
        """``(message_id, message)`` for one recipient; SMTPUTF8 headers when international."""
        policy = _POLICIES[international]
        before, between, after = self._heads(policy)
        message_id = make_msgid(idstring=self.msgid_idstring, domain=self.msgid_domain)
        values = recipient_values(recipient)
        parts = [
            f"Message-ID: {message_id}\r\n".encode(),
            self._date_header(),
            before,
            self._to(recipient, policy),
            between,
            self._unsubscribe(recipient, policy),
            after,
            self._mime,
            self._text_head,
        ]
        parts += [c if isinstance(c, bytes) else c.render(values, False) for c in self._text]
        parts.append(self._html_head)
        parts += [c if isinstance(c, bytes) else c.render(values, True) for c in self._html]
        parts.append(self._end)
        return message_id, b"".join(parts)
