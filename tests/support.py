"""Builders shared by the tests: an edition, a publication's settings, Chromium's flags, TLS.

Each builder fills in only what a test does not look at; a test passes what it asserts on.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from briefcast.config import Settings
from briefcast.models import EmailVariant, RenderedEdition

# The publication most channel tests send for; add sender_name, web_base_url, ... per test.
GAZETTE = {
    "name": "The Test Gazette",
    "site_url": "https://gazette.example",
    "postal_address": "1 Main St",
    "sender_email": "brief@gazette.example",
}

# The publication the renderer tests render for: harbour_ledger_settings.
HARBOUR_LEDGER = {
    "name": "The Harbour Ledger",
    "site_url": "https://ledger.example.org",
    "postal_address": "12 Harbour Road",
    "sender_email": "brief@ledger.example.org",
}


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a `briefcast` subprocess: none of this process's Prefect or
    briefcast settings, and the session's shared Prefect API when the test asked for it
    (``pytest.mark.usefixtures("shared_prefect_api")``), so the command need not start its
    own temporary server."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PREFECT_") and k not in {"BRIEFCAST_DATA", "BRIEFCAST_CONFIG"}
    }
    shared = os.environ.get("BRIEFCAST_TEST_PREFECT_API_URL")
    if shared:
        env["PREFECT_API_URL"] = shared
    env.update(COLUMNS="200", **extra)
    return env


# Headless Chromium as the browser tests launch it (no sandbox: CI runs as root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def make_edition(
    edition_id: str = "2026-11-20",
    *,
    edition_date: date = date(2026, 11, 20),
    subject: str = "s",
    html: str = "<p>h</p>",
    text: str = "t",
    **fields,
) -> RenderedEdition:
    """An edition of The Test Gazette with no stories, posts or Telegram messages.

    ``subject``, ``html`` and ``text`` make its email; any other RenderedEdition field
    (``x_posts``, ``telegram_messages``, ``telegram_photo``, ...) can be given as a keyword.
    """
    values = dict(
        edition_id=edition_id,
        edition_date=edition_date,
        publication="The Test Gazette",
        site_url="https://gazette.example",
        articles=[],
        email=EmailVariant(subject=subject, preheader="p", html=html, text=text),
        x_posts=[],
        x_thread=False,
        telegram_messages=[],
    )
    return RenderedEdition(**{**values, **fields})


def gazette_settings(
    tmp_path: Path, *, database: str = "briefcast.db", **publication: str
) -> Settings:
    """Settings for The Test Gazette (GAZETTE plus ``publication``), its data in tmp_path.

    The data folder is tmp_path/data; the database is the SQLite file tmp_path/``database``.
    """
    return Settings.model_validate(
        {
            "publication": {**GAZETTE, **publication},
            "data_dir": str(tmp_path / "data"),
            "database": {"url": f"sqlite:///{tmp_path / database}"},
        }
    )


def harbour_ledger_settings(
    tmp_path: Path, *, edition: dict | None = None, **publication: str
) -> Settings:
    """Settings for The Harbour Ledger (HARBOUR_LEDGER plus ``publication``) based in tmp_path.

    ``edition`` is the [edition] table, if the test sets one.
    """
    values = {"publication": {**HARBOUR_LEDGER, **publication}, "base_dir": tmp_path}
    if edition is not None:
        values["edition"] = edition
    return Settings.model_validate(values)


def self_signed_certificate(folder: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 that is its own CA: (cert file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def server_tls(certificate: tuple[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def wait_for(condition, *, timeout: float, what: str, every: float = 0.05):
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)
    return value
