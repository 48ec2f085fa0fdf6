"""The outbox channel: writes exactly what would be sent, one file per delivery.

``<outbox>/<edition>/email/<address>.eml`` holds each subscriber's message as
it would leave (both parts, headers, their own links); ``x/post-N.json``,
``telegram/<chat>-N.json``, ``bluesky/post-N.json`` and ``mastodon/status-N.json``
hold the posts and messages. It is the default
channel, so a newsroom can see an edition before wiring up any provider.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from briefcast.channels.base import (
    BaseChannel,
    ChannelSettings,
    Delivery,
    Planned,
    Receipt,
    size_of,
)
from briefcast.channels.email_message import ascii_address, build_email, mailing_list
from pydantic import Field

from briefcast.models import RenderedEdition


class OutboxSettings(ChannelSettings):
    path: str = Field("", description="Outbox folder; default: <data dir>/outbox.")
    telegram_chat: str = Field("@outbox", description="Chat name used for Telegram files.")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._+-]", "_", name)


class OutboxChannel(BaseChannel):
    name = "outbox"
    Settings = OutboxSettings
    sends_email = True  # takes the [TEST] copy of a test send
    max_batch = 500

    @property
    def root(self) -> Path:
        path = self.settings.path
        return Path(path) if path else self.context.data_dir / "outbox"

    def plan(self, edition: RenderedEdition) -> Planned:
        self.edition = edition
        posts = len(edition.x_posts) + len(edition.telegram_messages)
        posts += 1 if edition.telegram_photo else 0
        posts += len(edition.bluesky_posts) + len(edition.mastodon_posts)
        size = size_of(self.context.recipients) + posts
        return Planned(self._deliveries(edition), size)

    def _deliveries(self, edition: RenderedEdition) -> Iterator[Delivery]:
        for r, problem in mailing_list(
            self.context.recipients, self.name, test_send=self.context.test_send
        ):
            yield Delivery(f"email:{r.email.lower()}", ("email", r), problem=problem)
        for n, post in enumerate(edition.x_posts, 1):
            yield Delivery(f"x:post-{n}", ("x", post.model_dump()))
        chat = self.settings.telegram_chat
        if edition.telegram_photo:
            yield Delivery(f"telegram:{chat}:photo", ("telegram", edition.telegram_photo))
        for n, message in enumerate(edition.telegram_messages, 1):
            yield Delivery(f"telegram:{chat}:msg-{n}", ("telegram", message))
        for n, post in enumerate(edition.bluesky_posts, 1):
            yield Delivery(f"bluesky:post-{n}", ("bluesky", post))
        for n, post in enumerate(edition.mastodon_posts, 1):
            yield Delivery(f"mastodon:status-{n}", ("mastodon", post))

    def send(self, batch: Sequence[Delivery]) -> list[Receipt]:
        folder = self.root / _safe(self.edition.edition_id)
        return [self._write(folder, delivery) for delivery in batch]

    def _write(self, folder: Path, delivery: Delivery) -> Receipt:
        kind, item = delivery.payload
        if kind == "email":
            message = build_email(
                self.edition, item, self.context.publication, test=self.context.test_send
            )
            path = folder / "email" / f"{_safe(item.email.lower())}.eml"
            international = not ascii_address(item.email).isascii()  # sent with SMTPUTF8
            data = message.as_bytes(policy=message.policy.clone(utf8=international))
        else:
            name = delivery.target.split(":", 1)[1]
            path = folder / kind / f"{_safe(name)}.json"
            body = item if isinstance(item, dict) else item.model_dump()
            data = json.dumps(body, ensure_ascii=False, indent=2).encode()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return Receipt(provider_id=str(path.relative_to(self.root)))
