"""What a run shows in the Prefect UI: the preview, the email's HTML and the delivery report.

The Markdown is built by plain functions (tested without Prefect); ``publish_*``
turn it into artifacts of the current flow run. Only rendered content and
counts go into an artifact: never settings, so never a secret.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from briefcast.flows.telegram_view import telegram_markdown
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)

from briefcast.dispatch import ChannelReport
from briefcast.models import Gathered, RenderedEdition
from briefcast.preview import with_samples
from briefcast.render.telegram_html import telegram_length

X_LIMIT = 280
TELEGRAM_MESSAGE_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024
BLUESKY_LIMIT = 300
MASTODON_LIMIT = 500  # the instance's own limit is checked before the first status

PREVIEW_KEY = "brief-preview"
EMAIL_HTML_KEY = "brief-email-html"
TEST_REPORT_KEY = "brief-test-send-report"
DELIVERY_REPORT_KEY = "brief-delivery-report"
REPORT_COLUMNS = ("channel", "delivered", "skipped", "failed", "in doubt", "held back", "reasons")

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def escape_markdown(text: str) -> str:
    """One line of text shown literally, whatever an article title contains."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def link(text: str, url: str) -> str:
    """A Markdown link; the URL's parentheses and spaces encoded so they cannot end it."""
    target = url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
    return f"[{escape_markdown(text)}]({target})"


def fenced(text: str, language: str = "") -> str:
    """A code block whose fence no backtick run in ``text`` can close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _count(length: int, limit: int) -> str:
    flag = " **over the limit**" if length > limit else ""
    return f"{length}/{limit}{flag}"


def preview_markdown(
    edition: RenderedEdition,
    gathered: Gathered | None = None,
    html_link: str = "",
    samples: dict[str, str] | None = None,
) -> str:
    """Everything the edition sends, as one Markdown page.

    ``samples`` fill the per-reader placeholders of the text version (see
    briefcast.preview.public_samples); Telegram messages are shown formatted, as a reader
    sees them, with their HTML source folded away below.
    """
    email = edition.email
    lines = [
        f"# {escape_markdown(edition.publication)}: edition {escape_markdown(edition.edition_id)}",
        "",
        f"{_plural(len(edition.articles), 'article')}.",
    ]
    if gathered is not None and gathered.problems:
        lines += ["", "## Skipped sources and entries", ""]
        for problem in gathered.problems:
            entry = f" ({escape_markdown(problem.entry)})" if problem.entry else ""
            lines.append(
                f"- {escape_markdown(problem.source)}{entry}: {escape_markdown(problem.reason)}"
            )
    lines += [
        "",
        "## Email",
        "",
        f"**Subject:** {escape_markdown(email.subject)}",
        "",
        f"**Preheader:** {escape_markdown(email.preheader)}",
        "",
    ]
    if html_link:
        lines += [f"**HTML version:** {link('open the email as it will look', html_link)}", ""]
    text = with_samples(email.text, samples, html=False)
    lines += ["**Text version** (sample links and name):", "", fenced(text), ""]

    thread = ", a thread" if edition.x_thread and len(edition.x_posts) > 1 else ""
    lines += [f"## X ({_plural(len(edition.x_posts), 'post')}{thread})"]
    for number, post in enumerate(edition.x_posts, 1):
        lines += [
            "",
            f"**Post {number}**: weighted length {_count(post.weighted_length, X_LIMIT)}",
            "",
            fenced(post.text),
        ]

    lines += ["", f"## Telegram ({_plural(len(edition.telegram_messages), 'message')})"]
    photo = edition.telegram_photo
    if photo is not None:
        length = telegram_length(photo.caption)
        lines += [
            "",
            f"**Photo** ({link('open the photo', photo.url)}): caption length "
            f"{_count(length, TELEGRAM_CAPTION_LIMIT)}",
            "",
            telegram_markdown(photo.caption),
        ]
    for number, message in enumerate(edition.telegram_messages, 1):
        length = telegram_length(message.text)
        lines += [
            "",
            f"**Message {number}**: length {_count(length, TELEGRAM_MESSAGE_LIMIT)} "
            "(characters after HTML parsing)",
            "",
            telegram_markdown(message.text),
        ]
    if edition.telegram_messages or photo is not None:
        sources = [photo.caption] if photo is not None else []
        sources += [message.text for message in edition.telegram_messages]
        lines += ["", "**Telegram HTML as sent:**", "", fenced("\n\n".join(sources), "html")]
    lines += social_preview(edition)
    return "\n".join(lines) + "\n"


def social_preview(edition: RenderedEdition) -> list[str]:
    """The Bluesky and Mastodon posts with their lengths, as each platform counts them."""
    lines: list[str] = []
    for name, posts, limit, unit in (
        ("Bluesky", edition.bluesky_posts, BLUESKY_LIMIT, "graphemes"),
        ("Mastodon", edition.mastodon_posts, MASTODON_LIMIT, "characters, any link 23"),
    ):
        if not posts:
            continue
        thread = ", a thread" if edition.x_thread and len(posts) > 1 else ""
        lines += ["", f"## {name} ({_plural(len(posts), 'post')}{thread})"]
        for number, post in enumerate(posts, 1):
            links = "".join(f" → {escape_markdown(link.uri)}" for link in post.links)
            lines += [
                "",
                f"**Post {number}**: length {_count(post.length, limit)} ({unit}){links}",
                "",
                fenced(post.text),
            ]
    return lines


def report_rows(reports: Sequence[ChannelReport]) -> list[dict[str, object]]:
    """One row per channel, the columns in a fixed order."""
    rows = []
    for report in reports:
        row = report.as_row()
        rows.append({column: row[column] for column in REPORT_COLUMNS})
    return rows


def publish_preview(
    edition: RenderedEdition,
    gathered: Gathered,
    html_link: str,
    samples: dict[str, str] | None = None,
) -> None:
    create_markdown_artifact(
        preview_markdown(edition, gathered, html_link, samples),
        key=PREVIEW_KEY,
        description=f"What edition {edition.edition_id} sends on every channel.",
    )


def publish_email_html(edition: RenderedEdition, url: str, path: Path) -> None:
    create_link_artifact(
        url,
        link_text=f"Email HTML of edition {edition.edition_id}",
        key=EMAIL_HTML_KEY,
        description=f"The web version of the email; the same HTML is in {path}.",
    )


def publish_report(reports: Sequence[ChannelReport], *, test_send: bool, edition_id: str) -> None:
    what = "Test send" if test_send else "Delivery"
    create_table_artifact(
        report_rows(reports),
        key=TEST_REPORT_KEY if test_send else DELIVERY_REPORT_KEY,
        description=f"{what} report for edition {edition_id}, one row per channel.",
    )
