"""One edition rendered for every channel: email, X, Telegram, Bluesky and Mastodon."""

from __future__ import annotations

from briefcast.config import Settings
from briefcast.models import Gathered, RenderedEdition
from briefcast.render.cards import build_cards
from briefcast.render.context import edition_context, link_tagger, tagged_articles
from briefcast.render.newsletter import render_email
from briefcast.render.social_posts import build_bluesky_posts, build_mastodon_posts
from briefcast.render.telegram_digest import render_messages, render_photo
from briefcast.render.templating import Templates
from briefcast.render.x_posts import build_posts


def render_edition(
    settings: Settings, gathered: Gathered, edition_id: str | None = None
) -> RenderedEdition:
    """Render ``gathered`` for every channel; the first article is the lead."""
    edition_id = edition_id or gathered.edition_date.isoformat()
    context = edition_context(settings, gathered, edition_id)
    templates = Templates.for_settings(settings)
    thread = settings.edition.x_thread
    opener = templates.render("x_opener.txt.j2", context).strip() if thread else None
    site = settings.publication.site_url
    x_articles = tagged_articles(
        gathered.articles, link_tagger(settings, gathered, edition_id, "x")
    )
    telegram_cards = build_cards(
        gathered.articles, site, link_tagger(settings, gathered, edition_id, "telegram")
    )
    return RenderedEdition(
        edition_id=edition_id,
        edition_date=gathered.edition_date,
        publication=settings.publication.name,
        site_url=settings.publication.site_url,
        articles=gathered.articles,
        email=render_email(templates, context),
        x_posts=build_posts(x_articles, opener, site),
        x_thread=thread,
        telegram_photo=render_photo(templates, context, telegram_cards[0]),
        telegram_messages=render_messages(templates, context, telegram_cards),
        bluesky_posts=build_bluesky_posts(
            _tagged(settings, gathered, edition_id, "bluesky"),
            _opener(templates, "bluesky", context, thread),
            site,
        ),
        mastodon_posts=build_mastodon_posts(
            _tagged(settings, gathered, edition_id, "mastodon"),
            _opener(templates, "mastodon", context, thread),
            site,
        ),
    )


def _tagged(settings: Settings, gathered: Gathered, edition_id: str, variant: str):
    return tagged_articles(gathered.articles, link_tagger(settings, gathered, edition_id, variant))


def _opener(templates: Templates, platform: str, context: dict, thread: bool) -> str | None:
    return templates.render(f"{platform}_opener.txt.j2", context).strip() if thread else None
