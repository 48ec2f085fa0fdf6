"""Signed, opaque tokens for per-recipient links (unsubscribe, confirm, view).

A token is ``base64url(purpose:address).base64url(hmac)``; the HMAC covers the
purpose and the address, so a token cannot be forged, nor reused for another
address or another purpose.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path


class BadToken(ValueError):
    pass


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> str:
    """Unpadded base64url (what base64.urlsafe_b64encode makes, in one C call less)."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _unb64(text: str) -> bytes:
    """Strict: the URL-safe alphabet, no padding, and the one canonical spelling of the bytes.
    A lenient decoder skips stray characters and ignores the last character's spare bits, so
    many strings would name one token."""
    if not _B64URL.fullmatch(text):
        raise ValueError("not unpadded base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not the canonical base64url spelling")
    return data


class Signer:
    """Signs many addresses for one purpose with one secret: ``sign(secret, purpose, a)``.

    The HMAC is keyed once and copied per address: setting the key up is most of the cost
    of signing one short message, and an edition signs a link per subscriber.
    """

    def __init__(self, secret: str, purpose: str) -> None:
        self._keyed = hmac.new(secret.encode(), digestmod=hashlib.sha256)
        self._purpose = f"{purpose}:"

    def sign(self, address: str) -> str:
        message = f"{self._purpose}{address.lower()}".encode()
        mac = self._keyed.copy()
        mac.update(message)
        return f"{_b64(message)}.{_b64(mac.digest())}"


def sign(secret: str, purpose: str, address: str) -> str:
    return Signer(secret, purpose).sign(address)


def verify(secret: str, purpose: str, token: str) -> str:
    """Return the address the token was made for, or raise BadToken."""
    try:
        body, mac = token.split(".", 1)
        message = _unb64(body)
        given = _unb64(mac)
    except (ValueError, TypeError) as exc:
        raise BadToken("malformed token") from exc
    expected = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    if not hmac.compare_digest(given, expected):
        raise BadToken("token signature does not match")
    token_purpose, _, address = message.decode(errors="replace").partition(":")
    if token_purpose != purpose:
        raise BadToken("token is for another purpose")
    return address


def local_secret(data_dir: Path) -> str:
    """A per-installation secret for when none is configured (development and demos).

    The file is readable by its owner only from the moment it exists, and appears whole:
    written under a temporary name, then linked into place (two processes starting at
    once end up with the same key)."""
    path = data_dir / "link-secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    draft = data_dir / f".link-secret.{secrets.token_hex(8)}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        os.link(draft, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        draft.unlink(missing_ok=True)
    return value
