"""The channel adapter contract.

An adapter is a class with a ``name``, a pydantic ``Settings`` model and two
methods: ``plan`` turns a rendered edition into the deliveries it would make
(validating every one of them before anything is sent), and ``send`` makes one
attempt at a batch of them. ``send`` returns one outcome per delivery, in order:
a :class:`Receipt`, a :class:`~briefcast.channels.errors.DeliveryError` for a delivery
that failed on its own (an SMTP 550 for one recipient), or ``None`` when the
adapter cannot tell whether the provider took it (the connection died before
the reply): the ledger then keeps it in doubt rather than sending it twice. An
error that fails the whole batch is raised instead. Retries, waits and the ledger are the
dispatcher's business, not the adapter's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from briefcast.channels.errors import DeliveryError
from pydantic import BaseModel, ConfigDict

from briefcast.models import RenderedEdition


class ChannelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str = ""
    unsubscribe_url: str = ""
    view_url: str = ""


@dataclass(frozen=True)
class Delivery:
    """One message to one target. ``target`` is the ledger key within the channel."""

    target: str
    payload: Any
    after: str | None = None  # target whose receipt this one needs (a reply in a thread)
    parent_receipt: str | None = None  # filled in by the dispatcher from the ledger


@dataclass(frozen=True)
class Receipt:
    provider_id: str
    detail: str = ""
    # False: the provider accepted the request but sends nothing (a sandbox). The
    # ledger does not count it as sent, so a live run later delivers it.
    delivered: bool = True


Outcome = Receipt | DeliveryError | None


@dataclass
class ChannelContext:
    """What the flow hands every adapter: the publication and who to send to."""

    publication: Any  # briefcast.config.Publication
    data_dir: Path
    recipients: Sequence[Recipient] = ()
    test_send: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Channel(Protocol):
    name: ClassVar[str]
    Settings: ClassVar[type[ChannelSettings]]
    max_batch: ClassVar[int]

    def __init__(self, settings: ChannelSettings, context: ChannelContext) -> None: ...

    def plan(self, edition: RenderedEdition) -> list[Delivery]:
        """Every delivery for this edition, in send order. Raise ContentError if any is invalid."""
        ...

    def send(self, batch: Sequence[Delivery]) -> list[Outcome]:
        """One attempt at a batch of at most ``max_batch`` deliveries."""
        ...

    def close(self) -> None: ...


class BaseChannel:
    """Convenience base: stores settings and context, single-delivery batches."""

    name: ClassVar[str] = ""
    Settings: ClassVar[type[ChannelSettings]] = ChannelSettings
    max_batch: ClassVar[int] = 1

    def __init__(self, settings: ChannelSettings, context: ChannelContext) -> None:
        self.settings = settings
        self.context = context

    def send(self, batch: Sequence[Delivery]) -> list[Outcome]:
        return [self.send_one(delivery) for delivery in batch]

    def send_one(self, delivery: Delivery) -> Receipt:
        raise NotImplementedError

    def close(self) -> None:
        return None
