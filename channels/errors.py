"""The one error tree every channel adapter maps its provider's failures into.

::

    ChannelError
    ├── ConfigError             bad or missing settings, found before the first send
    ├── ContentError            the edition breaks the channel's limits; nothing was sent
    └── DeliveryError           carries channel, provider status and code
        ├── TransientError      5xx, 408, timeouts, connection resets, SMTP 4xx
        │   └── RateLimited     429 and friends; carries retry_after seconds
        └── PermanentError      other 4xx, SMTP 5xx, Telegram "chat not found"
            ├── AuthError       401/403 on our own credentials
            └── RecipientRejected  the address itself is refused (a hard bounce)

Adapters make one attempt and raise; the dispatcher decides about retries.
"""

from __future__ import annotations


class ChannelError(Exception):
    """Base of every error a channel raises."""


class ConfigError(ChannelError):
    """The channel's settings are wrong or missing."""


class ContentError(ChannelError):
    """The rendered edition cannot go out on this channel as it is."""


class DeliveryError(ChannelError):
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        channel: str = "",
        status: int | str | None = None,
        code: str | int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.channel = channel
        self.status = status
        self.code = code

    def __str__(self) -> str:
        status = f" (status {self.status})" if self.status is not None else ""
        return f"{self.message}{status}"


class TransientError(DeliveryError):
    retryable = True


class RateLimited(TransientError):
    def __init__(self, message: str, *, retry_after: float, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = max(0.0, float(retry_after))

    def __str__(self) -> str:
        return f"{super().__str__()}; retry after {self.retry_after:g}s"


class PermanentError(DeliveryError):
    pass


class AuthError(PermanentError):
    pass


class RecipientRejected(PermanentError):
    """The provider refuses this address for good (SMTP 5xx at RCPT TO): a hard bounce.

    Email channels report it so the subscriber is marked bounced and not mailed again.
    """
