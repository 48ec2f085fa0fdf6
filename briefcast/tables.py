"""Every table briefcast keeps, on one MetaData: the ledger, the runs, the subscribers, the
edition events.

Defined here, apart from the code that uses them, so that ``briefcast.db`` can
create them all without importing the ledger or the subscriber list (and an
Alembic migration can read them without importing either).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

PENDING = "pending"

DELIVERIES_FILLFACTOR = 50

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("edition_id", String(100), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("target", String(400), nullable=False),
    Column("seq", Integer, nullable=False, default=0),
    Column("state", String(20), nullable=False, default=PENDING),
    Column("run_id", String(64)),
    # The lease (a row of ``runs``) under which the row was claimed: tells a live
    # run's claims from those a crashed run left behind.
    Column("lease_id", String(64)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("receipt", String(400)),
    Column("error", Text),
    Column("retryable", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("edition_id", "channel", "target", name="uq_delivery"),
    # Half of each page left free on PostgreSQL: a claim and a record rewrite every row,
    # and a new row version that fits on its page skips the index updates (a HOT
    # update). Claims of 1000 rows took half the time (migration 0004).
    postgresql_with={"fillfactor": DELIVERIES_FILLFACTOR},
)

# One row per dispatch of one channel by one process: its heartbeat is the lease
# on the rows it claims. A lease whose heartbeat stopped without a finish is a
# crashed run; its in-flight rows are in doubt.
runs = Table(
    "runs",
    metadata,
    Column("lease_id", String(64), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("edition_id", String(100), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("host", String(255), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("outcome", String(40)),  # "finished", "stopped (SIGTERM)"
)

edition_stories = Table(
    "edition_stories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("edition_id", String(100), nullable=False),
    Column("edition_date", Date, nullable=False),
    Column("story_key", String(1000), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("edition_id", "story_key", name="uq_edition_story"),
)

# The rendered edition as it is being sent (RenderedEdition JSON). Targets such as
# "post-3" are positions in it, so a rerun must send this, not a fresh render of
# sources that have changed since.
edition_contents = Table(
    "edition_contents",
    metadata,
    Column("edition_id", String(100), primary_key=True),
    Column("content", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("address", String(320), nullable=False),
    Column("address_key", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False, default=""),
    Column("status", String(20), nullable=False),
    Column("source", String(200), nullable=False, default=""),
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True)),
    Column("unsubscribed_at", DateTime(timezone=True)),
    Column("bounced_at", DateTime(timezone=True)),
    Column("complained_at", DateTime(timezone=True)),
)

# The recipients of an edition are read in pages of active subscribers by id.
Index("ix_subscribers_status_id", subscribers.c.status, subscribers.c.id)

# What providers and readers did with each edition (briefcast.events): webhook events,
# SMTP hard bounces, web unsubscribes, social post links. One row per event.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("edition_id", String(100)),  # None: not traceable to an edition
    Column("channel", String(100), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("recipient", String(320)),  # an email address, lowercased
    Column("url", Text),  # the clicked link, or the social post's link
    Column("detail", Text),  # bounce reason, how someone unsubscribed, ...
    Column("provider_event_id", String(200)),  # SendGrid's sg_event_id, a post's receipt
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("channel", "provider_event_id", name="uq_event_provider_id"),
    Index("ix_events_edition", "edition_id", "channel", "kind"),
)
