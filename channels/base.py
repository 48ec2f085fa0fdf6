"""The channel adapter contract.

An adapter is a class with a ``name``, a pydantic ``Settings`` model and two
methods. ``plan(edition)`` checks what is edition-wide (raising ContentError
before anything is sent when the edition cannot go out on the channel) and
returns the deliveries it would make, in send order, as an iterable that may
be lazy: a mailing list is streamed from the subscriber table page by page
and never held whole. A problem with one recipient is not an edition problem:
that delivery carries ``problem`` (the reason), the dispatcher records it as
failed without sending, and the rest goes on.

``send`` makes one attempt at a batch and returns one outcome per delivery, in
order: a :class:`Receipt`, a :class:`~briefcast.channels.errors.DeliveryError` for a
delivery that failed on its own (an SMTP 550 for one recipient), or
:class:`InDoubt` (``None`` also means in doubt) when the adapter cannot tell
whether the provider took it (the connection died after the request went
out): the ledger then keeps it in doubt rather than sending it twice. An error
that fails the whole batch is raised instead. Retries, waits, parent receipts,
budgets and the ledger are the dispatcher's business, not the adapter's: an
adapter never touches the database.

The dispatcher calls ``send`` from up to ``concurrency`` threads at once
(``[dispatch] concurrency`` overrides the adapter's default), so an adapter
whose default is above 1 keeps no per-call state on ``self``.

By default the dispatcher claims a whole batch just before ``send``. An adapter
whose batch is many separate messages (SMTP: one transaction per recipient) sets
``claims_each = True`` and is called as ``send(batch, handover)``: it calls
``handover.claim(delivery)`` at its point of no return (before the end of
DATA) and goes no further with that delivery when it returns False, and
``handover.done(delivery, outcome)`` as soon as the answer is known, before its
connection moves on. So a crash leaves in doubt only the messages under way,
not the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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
    problem: str | None = None  # why this one cannot go (found in plan); nothing is sent


@dataclass(frozen=True)
class Receipt:
    provider_id: str
    detail: str = ""
    # False: the provider accepted the request but sends nothing (a sandbox). The
    # ledger does not count it as sent, so a live run later delivers it.
    delivered: bool = True


@dataclass(frozen=True)
class InDoubt:
    """The request went out and no answer came: the provider may have taken it."""

    reason: str = "no answer after the request went out"


Outcome = Receipt | DeliveryError | InDoubt | None


class Handover(Protocol):
    """The dispatcher's side of a ``claims_each`` send (see the module docstring).

    ``reserve(delivery)`` may be called a step before ``claim`` to start the claim
    early; the adapter must still call ``claim`` (or ``done``) for it.
    """

    def reserve(self, delivery: Delivery) -> None: ...

    def claim(self, delivery: Delivery) -> bool: ...

    def done(self, delivery: Delivery, outcome: Outcome) -> None: ...


class TakeAll:
    """A handover for calling ``send`` without a dispatcher (tests, tools): claims all."""

    def reserve(self, delivery: Delivery) -> None:
        return None

    def claim(self, delivery: Delivery) -> bool:
        return True

    def done(self, delivery: Delivery, outcome: Outcome) -> None:
        return None


def size_of(items: object) -> int | None:
    """How many items, when that is known without iterating them."""
    try:
        return len(items)  # type: ignore[arg-type]
    except TypeError:
        return None


class Planned:
    """A lazy plan that knows how many deliveries it will yield (for progress)."""

    def __init__(self, deliveries: Iterable[Delivery], size: int | None) -> None:
        self._deliveries = deliveries
        self._size = size

    def __iter__(self) -> Iterator[Delivery]:
        return iter(self._deliveries)

    def __len__(self) -> int:
        return self._size or 0


@dataclass
class ChannelContext:
    """What the flow hands every adapter: the publication and who to send to."""

    publication: Any  # briefcast.config.Publication
    data_dir: Path
    recipients: Iterable[Recipient] = ()  # a list, or a stream (subscribers.ActiveRecipients)
    test_send: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Channel(Protocol):
    name: ClassVar[str]
    Settings: ClassVar[type[ChannelSettings]]
    max_batch: ClassVar[int]
    concurrency: ClassVar[int]  # requests in flight at once by default

    def __init__(self, settings: ChannelSettings, context: ChannelContext) -> None: ...

    def plan(self, edition: RenderedEdition) -> Iterable[Delivery]:
        """Every delivery for this edition, in send order, possibly lazily.

        Raise ContentError (before returning) when the edition itself cannot go.
        """
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
    concurrency: ClassVar[int] = 1

    def __init__(self, settings: ChannelSettings, context: ChannelContext) -> None:
        self.settings = settings
        self.context = context

    def send(self, batch: Sequence[Delivery]) -> list[Outcome]:
        return [self.send_one(delivery) for delivery in batch]

    def send_one(self, delivery: Delivery) -> Receipt:
        raise NotImplementedError

    def close(self) -> None:
        return None
