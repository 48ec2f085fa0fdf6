"""How often the public subscribe form may be used, so nobody can turn it into a mail cannon.

Three limits, counted with the ``limits`` library (moving windows) in memory, or in Redis
when several web processes serve (``[web.limits] storage_url``):

- per client IP: subscribe requests from one address, or one IPv6 /64 (behind a trusted
  proxy, the client the proxy names; see ``[web.limits] trusted_proxies``);
- overall: subscribe requests from everyone together, which caps what a botnet gets;
- per mailbox: confirmation mails to one mailbox, ``name+anything@`` counting as ``name@``.

The first two answer 429 to the client; the third is silent (the visitor sees the usual
"check your inbox" page either way, so it tells nothing about the address). Keys hold a
hash of the mailbox, never the address itself.
"""

from __future__ import annotations

import hashlib
import ipaddress

from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from briefcast.config import WebLimits

__all__ = ["StorageError", "SubscribeLimits", "client_key", "mailbox_key"]

CLIENT, OVERALL = "client", "overall"


def client_key(host: str) -> str:
    """One key per client: an IPv4 address, or the /64 an IPv6 address is in (one
    household or server usually has a whole /64 to pick addresses from)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if ip.version == 6 and not ip.ipv4_mapped:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)


def mailbox_key(address: str) -> str:
    """One key per mailbox: lower case, the ``+tag`` dropped, hashed."""
    local, _, domain = address.rpartition("@")
    local = local.split("+", 1)[0] or local
    return hashlib.sha256(f"{local}@{domain}".lower().encode()).hexdigest()[:32]


class SubscribeLimits:
    def __init__(self, conf: WebLimits) -> None:
        self.prefix = conf.key_prefix
        self.storage = storage_from_string(
            conf.storage_url, wrap_exceptions=True, **_timeouts(conf.storage_url)
        )
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.per_client = parse_many(conf.per_client)
        self.overall = parse_many(conf.overall)
        self.per_mailbox = parse_many(conf.per_mailbox)

    def reachable(self) -> bool:
        return self.storage.check()

    def refused_request(self, client_ip: str) -> str | None:
        """Count one subscribe request; the limit it broke (``client``, ``overall``) or None.

        StorageError when the storage does not answer."""
        if not self._take(self.per_client, CLIENT, client_key(client_ip)):
            return CLIENT
        if not self._take(self.overall, OVERALL):
            return OVERALL
        return None

    def mail_allowed(self, address: str) -> bool:
        """Count one confirmation mail to ``address``'s mailbox; False when it is one too many."""
        return self._take(self.per_mailbox, "mailbox", mailbox_key(address))

    def _take(self, items: list[RateLimitItem], *identifiers: str) -> bool:
        ids = (self.prefix, *identifiers)
        if not all(self.limiter.test(item, *ids) for item in items):
            return False
        return all([self.limiter.hit(item, *ids) for item in items])


def _timeouts(url: str) -> dict:
    # A Redis that stops answering must not hang the subscribe form.
    if url.startswith(("redis://", "rediss://", "unix://")):
        return {"socket_connect_timeout": 3, "socket_timeout": 3}
    return {}
