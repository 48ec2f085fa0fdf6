"""The subscriber web app, ``briefcast web``: ``create_app(settings)`` builds it.

Pages: the subscribe form (``/``), double opt-in (``/confirm/{token}``),
one-click unsubscribe (``/u/{token}``, RFC 8058), the archive (``/archive``) and
the SendGrid Event Webhook (``/webhooks/sendgrid``).

Confirmation takes a button press (a POST), not just the GET: corporate mail
scanners open every link in a message, and would otherwise confirm addresses
whose owners never asked for the brief, which is what double opt-in prevents.
"""

from __future__ import annotations

import logging

from fastapi import BackgroundTasks, FastAPI, Form, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool

from briefcast import events, subscribers, tokens
from briefcast.config import PROJECT_ROOT, ConfigFileError, Settings
from briefcast.db import get_engine
from briefcast.web import archive, links, operator_page, subscriptions, webhook
from briefcast.web.confirmation import confirmation_message, send_message
from briefcast.web.context import WebContext, page, web_context
from briefcast.web.throttle import ResendGuard

log = logging.getLogger("briefcast.web")

ONE_CLICK_KEY, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"

# Token links must not leak through the Referer header, nor be framed or cached.
SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def _templates(settings: Settings) -> Jinja2Templates:
    folders = [PROJECT_ROOT / "templates" / "web"]
    if settings.edition.templates:
        folders.insert(0, settings.templates_dir / "web")
    env = Environment(loader=FileSystemLoader(folders), autoescape=True)
    return Jinja2Templates(env=env)


def _webhook_key(settings: Settings):
    text = settings.web.sendgrid_webhook_public_key
    if not text:
        return None
    try:
        return webhook.load_public_key(text)
    except ValueError as exc:
        where = settings.source_file or "config"
        raise ConfigFileError(f"{where}: web.sendgrid_webhook_public_key: {exc}") from None


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title=f"{settings.publication.name} subscriptions",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.web = WebContext(
        settings=settings,
        engine=get_engine(settings.database_url),
        secret=subscribers.link_secret(settings),
        templates=_templates(settings),
        resend_guard=ResendGuard(),
        webhook_key=_webhook_key(settings),
    )

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith(("/u/", "/confirm/")):
            response.headers["Cache-Control"] = "no-store"
        return response

    app.add_api_route("/", subscribe_form, methods=["GET"], response_class=HTMLResponse)
    app.add_api_route("/subscribe", subscribe, methods=["POST"], response_class=HTMLResponse)
    app.add_api_route("/confirm/{token}", confirm_page, methods=["GET"])
    app.add_api_route("/confirm/{token}", confirm, methods=["POST"])
    app.add_api_route("/u/{token}", unsubscribe_page, methods=["GET"])
    app.add_api_route("/u/{token}", one_click_unsubscribe, methods=["POST"])
    app.include_router(archive.router)
    app.include_router(webhook.router)
    app.include_router(operator_page.router)
    return app


def _bad_link(request: Request):
    return page(
        request,
        "problem.html",
        status_code=400,
        title="This link doesn't work",
        message="The link is damaged, expired or not one of ours. Nothing was changed.",
    )


# -- subscribe ----------------------------------------------------------------


def subscribe_form(request: Request):
    return page(request, "subscribe.html")


def send_confirmation(settings: Settings, secret: str, address: str) -> None:
    """Runs after the response is sent, so timing doesn't tell whether the address is known."""
    link = links.confirm_url(settings, secret, address)
    try:
        send_message(settings, confirmation_message(settings, address, link))
    except Exception as exc:  # noqa: BLE001 - the visitor already has their page; log it
        log.error("confirmation mail to %s failed: %s: %s", address, type(exc).__name__, exc)


def subscribe(
    request: Request,
    background: BackgroundTasks,
    email: str = Form(""),
    name: str = Form(""),
):
    ctx = web_context(request)
    try:
        address = subscribers.normalize(email)
    except subscribers.InvalidAddress as exc:
        return page(
            request, "subscribe.html", status_code=400, error=str(exc), email=email, name=name
        )
    wanted = subscriptions.request_subscription(ctx.engine, address, name)
    if wanted and ctx.resend_guard.allow(address):
        background.add_task(send_confirmation, ctx.settings, ctx.secret, address)
    return page(request, "check_inbox.html", address=address)


# -- confirm ------------------------------------------------------------------


def confirm_page(request: Request, token: str):
    try:
        address, _ = links.read_confirm_token(web_context(request).secret, token)
    except tokens.BadToken:
        return _bad_link(request)
    return page(request, "confirm.html", address=address)


def confirm(request: Request, token: str):
    ctx = web_context(request)
    try:
        address, issued = links.read_confirm_token(ctx.secret, token)
    except tokens.BadToken:
        return _bad_link(request)
    if not subscriptions.confirm(ctx.engine, address, issued):
        return page(
            request,
            "problem.html",
            status_code=409,
            title="We can't subscribe you",
            message="This address can't be subscribed with this link. "
            "If you unsubscribed since, please subscribe again.",
        )
    return page(request, "confirmed.html", address=address)


# -- unsubscribe (RFC 8058) ---------------------------------------------------


def unsubscribe_page(request: Request, token: str):
    """Shows a button; never unsubscribes by itself (scanners prefetch links)."""
    ctx = web_context(request)
    try:
        address = tokens.verify(ctx.secret, "unsubscribe", token)
    except tokens.BadToken:
        return _bad_link(request)
    status = subscriptions.status_of(ctx.engine, address)
    return page(request, "unsubscribe.html", address=address, done=status in subscribers.SUPPRESSED)


async def one_click_unsubscribe(request: Request, token: str):
    """RFC 8058: the body is ``List-Unsubscribe=One-Click``; answer 200, never a redirect."""
    ctx = web_context(request)
    try:
        address = tokens.verify(ctx.secret, "unsubscribe", token)
    except tokens.BadToken:
        return _bad_link(request)
    form = await request.form()
    if form.get(ONE_CLICK_KEY) != ONE_CLICK_VALUE:
        return page(
            request,
            "problem.html",
            status_code=400,
            title="Nothing to do",
            message="An unsubscribe request carries List-Unsubscribe=One-Click.",
        )
    try:
        await run_in_threadpool(
            subscriptions.unsubscribe, ctx.engine, address, "one-click unsubscribe"
        )
    except subscribers.InvalidAddress:
        return _bad_link(request)
    await run_in_threadpool(events.record_unsubscribe, ctx.engine, address, "unsubscribe link")
    return page(request, "unsubscribed.html", address=address)
