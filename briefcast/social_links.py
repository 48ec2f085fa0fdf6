"""Links people can open for a social post, from the receipt the ledger keeps."""

from __future__ import annotations

import re

_AT_URI = re.compile(r"^at://([^/]+)/app\.bsky\.feed\.post/([^/?#]+)$")
_TELEGRAM = re.compile(r"^-100(\d+):(\d+)$")


def post_link(channel_type: str, receipt: str) -> str | None:
    """The post's web address, or None when the receipt alone does not tell it."""
    if receipt.startswith(("https://", "http://")):
        return receipt
    if channel_type == "x" and receipt.isdigit():
        return f"https://x.com/i/status/{receipt}"
    if channel_type == "bluesky" and (match := _AT_URI.match(receipt)):
        return f"https://bsky.app/profile/{match.group(1)}/post/{match.group(2)}"
    if channel_type == "telegram" and (match := _TELEGRAM.match(receipt)):
        return f"https://t.me/c/{match.group(1)}/{match.group(2)}"  # opens for channel members
    return None
