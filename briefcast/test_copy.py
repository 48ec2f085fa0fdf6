"""The [TEST] copy an editor gets before an edition goes out: email only, harmless links.

A test send delivers only on channels whose adapter sends email (``sends_email = True``
on the adapter class); the others are reported as skipped. The copy's unsubscribe link
leads nowhere, so an editor who clicks it (or whose mailbox offers one-click unsubscribe)
keeps their real subscription.
"""

from __future__ import annotations

from urllib.parse import quote

from briefcast.channels.base import Recipient
from briefcast.channels.registry import load_adapter

# briefcast web answers an unknown token with "This link doesn't work ... Nothing was changed."
TEST_UNSUBSCRIBE_PATH = "/u/test-copy-unsubscribes-nobody"


def sends_email(settings, channel: str) -> bool:
    """Whether the configured channel's adapter delivers email (a test copy goes only there)."""
    try:
        adapter = load_adapter(settings.channels[channel].get("type", channel))
    except (KeyError, LookupError):
        return True  # let the send report why the channel cannot start
    return bool(getattr(adapter, "sends_email", False))


def proof_recipient(settings, address: str, edition_id: str) -> Recipient:
    """A test recipient: the real edition's view link, an unsubscribe link that does nothing."""
    from briefcast.subscribers import normalize

    base = settings.publication.web_base_url.rstrip("/")
    return Recipient(
        email=normalize(address),
        unsubscribe_url=f"{base}{TEST_UNSUBSCRIBE_PATH}",
        view_url=f"{base}/archive/{quote(edition_id, safe='')}",
    )
