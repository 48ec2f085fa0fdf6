"""The double opt-in mail: one plain message with the signed confirmation link, over SMTP."""

from __future__ import annotations

import smtplib
import ssl
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from html import escape

from briefcast.config import Settings, WebSmtp


def confirmation_message(settings: Settings, address: str, link: str) -> EmailMessage:
    publication = settings.publication
    sender = settings.web.smtp.from_email or publication.sender_email
    message = EmailMessage()
    message["From"] = Address(publication.sender_name, addr_spec=sender)
    message["To"] = address
    message["Subject"] = f"Confirm your subscription to {publication.name}"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    if publication.reply_to:
        message["Reply-To"] = publication.reply_to
    message.set_content(
        f"Someone, hopefully you, asked to receive {publication.name} at this address.\n\n"
        f"To confirm, open this link:\n{link}\n\n"
        "If it wasn't you, ignore this message: you won't hear from us again.\n\n"
        f"{publication.postal_address}\n"
    )
    message.add_alternative(
        f"<p>Someone, hopefully you, asked to receive <strong>{escape(publication.name)}</strong>"
        " at this address.</p>"
        f'<p><a href="{escape(link)}">Confirm my subscription</a></p>'
        "<p>If it wasn't you, ignore this message: you won't hear from us again.</p>"
        f"<p><small>{escape(publication.postal_address)}</small></p>",
        subtype="html",
    )
    return message


def _connect(conf: WebSmtp, tls: ssl.SSLContext) -> smtplib.SMTP:
    port = conf.effective_port
    if conf.security == "tls":
        return smtplib.SMTP_SSL(conf.host, port, timeout=conf.timeout_seconds, context=tls)
    client = smtplib.SMTP(conf.host, port, timeout=conf.timeout_seconds)
    if conf.security == "starttls":
        client.starttls(context=tls)
    return client


def send_message(settings: Settings, message: EmailMessage) -> None:
    """Hand one message to the ``[web.smtp]`` server; smtplib's errors propagate."""
    conf = settings.web.smtp
    tls = ssl.create_default_context(cafile=settings.path(conf.ca_file) if conf.ca_file else None)
    with _connect(conf, tls) as client:
        if conf.username:
            password = conf.password.get_secret_value() if conf.password else ""
            client.login(conf.username, password)
        client.send_message(message)
