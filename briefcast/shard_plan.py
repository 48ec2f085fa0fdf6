"""A shard's plan: its own pages of a channel's deliveries first, then every other shard's.

See ``briefcast.shards`` for how shards share one channel's ledger rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

from briefcast.dispatch import PAGE_SIZE
from briefcast.models import RenderedEdition
from channels.base import Delivery, Planned, size_of


def pages(items: Iterable[Delivery], size: int) -> Iterator[list[Delivery]]:
    iterator = iter(items)
    while page := list(itertools.islice(iterator, size)):
        yield page


class ShardOf:
    """A channel adapter whose plan yields shard ``index``'s pages, then the others'.

    Everything but ``plan`` is the adapter's own, so the dispatcher sends, waits and
    records exactly as it does for a whole channel.
    """

    def __init__(self, adapter, index: int, count: int, page: int = PAGE_SIZE) -> None:
        if not 0 <= index < count:
            raise ValueError(f"shard {index} of {count}: the index is out of range")
        self._adapter = adapter
        self.index = index
        self.count = count
        self.page = page

    def __getattr__(self, name: str):
        return getattr(self._adapter, name)

    def plan(self, edition: RenderedEdition) -> Planned:
        first = self._adapter.plan(edition)  # an edition the channel refuses raises here

        def ordered() -> Iterator[Delivery]:
            for n, page in enumerate(pages(first, self.page)):
                if n % self.count == self.index:
                    yield from page
            # Then the other shards' pages: rows they have not claimed yet are ours to take.
            again = self._adapter.plan(edition)
            for n, page in enumerate(pages(again, self.page)):
                if n % self.count != self.index:
                    yield from page

        return Planned(ordered(), size_of(first))
