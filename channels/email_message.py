"""Build one subscriber's MIME message from a rendered edition.

Used by every adapter that hands over whole messages (SMTP, the outbox): a
multipart/alternative with the text and HTML parts, the recipient's own links
filled in, and the one-click unsubscribe headers Gmail and Yahoo require
(RFC 8058: an HTTPS URL in ``List-Unsubscribe`` plus ``List-Unsubscribe-Post``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime, make_msgid

from briefcast.channels.base import Recipient
from email_validator import EmailNotValidError, validate_email

from briefcast.models import RenderedEdition
from briefcast.render.placeholders import personalize

TEST_PREFIX = "[TEST] "

# Headers written exactly as given, on one line (up to RFC 5322's 998 characters).
_VERBATIM = frozenset({"list-unsubscribe"})


class _MailPolicy(EmailPolicy):
    """The default policy, except that ``List-Unsubscribe`` is never re-folded.

    Folding it at 78 characters makes the email package split the long, unbroken
    ``<https://…>`` token into RFC 2047 encoded words (``=?utf-8?q?=3Chttps…``), and
    mailbox providers then find no URL in it: no one-click unsubscribe at all.
    """

    def header_store_parse(self, name, value):
        if name.lower() in _VERBATIM and isinstance(value, str) and value.isascii():
            if "\r" in value or "\n" in value:
                raise ValueError("Header values may not contain linefeed or carriage return")
            return (name, value)
        return super().header_store_parse(name, value)


MAIL_POLICY = _MailPolicy(refold_source="none")

log = logging.getLogger("briefcast.channels.email")


def ascii_address(address: str) -> str:
    """The address with its domain in punycode when only the domain is non-ASCII.

    ``ana@bücher.example`` goes out as ``ana@xn--bcher-kva.example``: every mail
    server and provider takes that, while the Unicode form needs SMTPUTF8, which
    many relays lack. An address with a non-ASCII local part is returned as is.
    """
    if address.isascii():
        return address
    try:
        return validate_email(address, check_deliverability=False).ascii_email or address
    except EmailNotValidError:
        return address


def subject_for(edition: RenderedEdition, test: bool) -> str:
    return f"{TEST_PREFIX if test else ''}{edition.email.subject}"


def recipient_values(recipient: Recipient) -> dict[str, str]:
    return {
        "unsubscribe_url": recipient.unsubscribe_url,
        "view_url": recipient.view_url,
        "first_name": recipient.name.split(" ")[0] if recipient.name else "",
    }


def list_unsubscribe(recipient: Recipient, mailto: str | None = None) -> dict[str, str]:
    """The RFC 8058 header pair; empty when the recipient has no unsubscribe URL."""
    if not recipient.unsubscribe_url:
        return {}
    targets = [f"<{recipient.unsubscribe_url}>"]
    if mailto:
        targets.append(f"<mailto:{mailto.removeprefix('mailto:')}?subject=unsubscribe>")
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def warn_unless_https(recipients: Sequence[Recipient], channel: str) -> None:
    """RFC 8058 one-click needs an HTTPS link; mailbox providers ignore anything else."""
    plain = [
        r for r in recipients if r.unsubscribe_url and not r.unsubscribe_url.startswith("https:")
    ]
    if plain:
        log.warning(
            "%s: unsubscribe links are not HTTPS (%s...); mailbox providers honour "
            "one-click unsubscribe only over HTTPS: set publication.web_base_url to https://",
            channel,
            plain[0].unsubscribe_url.split("/u/")[0],
        )


def build_email(
    edition: RenderedEdition,
    recipient: Recipient,
    publication,
    *,
    test: bool = False,
    unsubscribe_mailto: str | None = None,
    sender: str | None = None,
    sender_name: str | None = None,
) -> EmailMessage:
    values = recipient_values(recipient)
    message = EmailMessage(policy=MAIL_POLICY)
    domain = (sender or publication.sender_email).rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(idstring=f"briefcast.{edition.edition_id}", domain=domain)
    message["Date"] = format_datetime(datetime.now(UTC))
    name = publication.sender_name if sender_name is None else sender_name
    message["From"] = Address(name, addr_spec=sender or publication.sender_email)
    # username/domain, not addr_spec: parsing refuses a non-ASCII local part (RFC 6532).
    local, _, domain = ascii_address(recipient.email).rpartition("@")
    message["To"] = Address(recipient.name, username=local, domain=domain)
    if publication.reply_to:
        message["Reply-To"] = publication.reply_to
    message["Subject"] = subject_for(edition, test)
    for name, value in list_unsubscribe(recipient, unsubscribe_mailto).items():
        message[name] = value
    message["X-Briefcast-Edition"] = edition.edition_id
    message.set_content(personalize(edition.email.text, values, html=False))
    message.add_alternative(personalize(edition.email.html, values, html=True), subtype="html")
    return message


def mailing_list(
    recipients: Iterable[Recipient], channel: str, *, test_send: bool = False
) -> Iterator[tuple[Recipient, str | None]]:
    """(recipient, problem) for the recipients, each address once, streamed.

    A subscriber message without a one-click unsubscribe link cannot go (test
    sends are exempt): its problem says so and the others go on. A plain-HTTP
    link gets one warning. A list given in memory (a test send) is de-duplicated
    here; the subscriber table keeps each address once by itself.
    """
    seen: set[str] | None = set() if isinstance(recipients, list | tuple) else None
    warned = test_send
    for recipient in recipients:
        if seen is not None:
            key = recipient.email.lower()
            if key in seen:
                continue
            seen.add(key)
        if not test_send and not recipient.unsubscribe_url:
            yield recipient, "no unsubscribe link"
            continue
        if not warned and not recipient.unsubscribe_url.startswith("https:"):
            warn_unless_https([recipient], channel)
            warned = True
        yield recipient, None
