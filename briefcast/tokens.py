"""Signed, opaque tokens for per-recipient links (unsubscribe, confirm, view).

A token is ``base64url(purpose:address).base64url(hmac)``; the HMAC covers the
purpose and the address, so a token cannot be forged, nor reused for another
address or another purpose.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path


class BadToken(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: str, purpose: str, address: str) -> str:
    message = f"{purpose}:{address.lower()}".encode()
    mac = hmac.digest(secret.encode(), message, "sha256")  # one-shot: the fast C path
    return f"{_b64(message)}.{_b64(mac)}"


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
    """A per-installation secret for when none is configured (development and demos)."""
    path = data_dir / "link-secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.write_text(value)
    path.chmod(0o600)
    return value
