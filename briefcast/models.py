"""The article model and the rendered edition.

An article carries what a newsroom story like ours has: a headline and dek, a
hero image with alt text, body sections, an editorial view, source links with a
line each, and a "keep reading" teaser. Feed entries fill what they can (often
just a headline, a link and a summary).
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field, HttpUrl

from briefcast.text import html_to_text


class Image(BaseModel):
    url: str
    alt: str = ""
    caption: str = ""


class Section(BaseModel):
    heading: str = ""
    html: str  # sanitized HTML


class EditorialView(BaseModel):
    title: str = "Our view"
    html: str  # sanitized HTML


class SourceLink(BaseModel):
    title: str
    url: str
    note: str = ""  # one line saying what the source adds


class Teaser(BaseModel):
    title: str
    url: str
    summary: str = ""


class Article(BaseModel):
    """One story, already sanitized: every `html` field is safe to embed."""

    key: str = Field(description="Stable identity: the GUID, else the canonical URL.")
    url: str
    title: str
    dek: str = ""
    summary_html: str = ""
    author: str = ""
    source: str = Field(description="Name of the source this article came from.")
    published: datetime
    updated: datetime | None = None
    hero: Image | None = None
    sections: list[Section] = Field(default_factory=list)
    view: EditorialView | None = None
    source_links: list[SourceLink] = Field(default_factory=list)
    keep_reading: Teaser | None = None
    tags: list[str] = Field(default_factory=list)
    priority: int = Field(0, description="Editor's pin: higher goes first.")

    @property
    def plain_summary(self) -> str:
        """The dek, else the summary as text (used by the templates, e.g. the preheader)."""
        return self.dek or html_to_text(self.summary_html)


class SourceProblem(BaseModel):
    """A source or entry that was skipped, and why."""

    source: str
    reason: str
    entry: str = ""


class Gathered(BaseModel):
    edition_date: date
    articles: list[Article]
    problems: list[SourceProblem] = Field(default_factory=list)


class EmailVariant(BaseModel):
    subject: str
    preheader: str
    html: str  # with per-recipient placeholders, see briefcast.render.placeholders
    text: str


class XPost(BaseModel):
    text: str
    weighted_length: int
    article_key: str = ""


class LinkFacet(BaseModel):
    """A link over part of a post's text, in UTF-8 byte offsets (Bluesky's facets)."""

    byte_start: int
    byte_end: int
    uri: str


class SocialPost(BaseModel):
    """A post for Bluesky or Mastodon; ``length`` in the platform's own counting."""

    text: str
    length: int
    links: list[LinkFacet] = Field(default_factory=list)
    article_key: str = ""


class TelegramMessage(BaseModel):
    text: str  # Telegram HTML parse mode


class TelegramPhoto(BaseModel):
    url: str
    caption: str  # Telegram HTML, at most 1024 characters


class RenderedEdition(BaseModel):
    """Everything one edition sends, for every channel."""

    edition_id: str
    edition_date: date
    publication: str
    site_url: HttpUrl | str
    articles: list[Article]
    email: EmailVariant
    x_posts: list[XPost]
    x_thread: bool
    telegram_photo: TelegramPhoto | None = None
    telegram_messages: list[TelegramMessage]
    bluesky_posts: list[SocialPost] = Field(default_factory=list)
    mastodon_posts: list[SocialPost] = Field(default_factory=list)
