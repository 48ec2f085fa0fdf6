"""A shard's plan: its own pages of a channel's recipients first, then every other shard's.

See ``briefcast.shards`` for how shards share one channel's ledger rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator

from briefcast.channels.base import Planned, Recipient, size_of
from briefcast.dispatch import PAGE_SIZE
from briefcast.models import RenderedEdition


def pages(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while page := list(itertools.islice(iterator, size)):
        yield page


def _pages_where(
    recipients: Iterable[Recipient],
    size: int,
    keep: Callable[[int], bool],
    go_on: Callable[[], bool] = lambda: True,
) -> Iterator[Recipient]:
    """The recipients of the pages whose number ``keep`` accepts, while ``go_on()`` holds."""
    for number, page in enumerate(pages(recipients, size)):
        if keep(number):
            if not go_on():
                return
            yield from page


class ShardOf:
    """A mailing-list adapter whose plan covers shard ``index``'s pages, then the others'.

    Page ``n`` of the subscriber stream (``page`` recipients) belongs to shard ``n %
    count``. The adapter plans only the recipients it is handed, so a shard builds each
    message once; the second pass, over the other shards' pages, ends as soon as
    ``pending()`` says the channel has no pending row left to take. Everything but
    ``plan`` is the adapter's own, so the dispatcher sends, waits and records exactly as
    it does for a whole channel.
    """

    def __init__(
        self,
        adapter,
        index: int,
        count: int,
        *,
        page: int = PAGE_SIZE,
        pending: Callable[[], bool] = lambda: True,
    ) -> None:
        if not 0 <= index < count:
            raise ValueError(f"shard {index} of {count}: the index is out of range")
        self._adapter = adapter
        self.index = index
        self.count = count
        self.page = page
        self.pending = pending

    def __getattr__(self, name: str):
        return getattr(self._adapter, name)

    def plan(self, edition: RenderedEdition) -> Planned:
        context = self._adapter.context
        everyone = context.recipients
        mine = self.index

        context.recipients = _pages_where(everyone, self.page, lambda n: n % self.count == mine)
        first = self._adapter.plan(edition)  # an edition the channel refuses raises here

        def ordered():
            yield from first
            # Then the other shards' pages: rows they have not claimed yet are ours to take.
            context.recipients = _pages_where(
                everyone, self.page, lambda n: n % self.count != mine, self.pending
            )
            yield from self._adapter.plan(edition)

        return Planned(ordered(), size_of(everyone))
