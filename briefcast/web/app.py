"""The subscriber web app, ``briefcast web``: ``create_app(settings)`` builds it.

Pages: the subscribe form (``/``), double opt-in (``/confirm/{token}``),
one-click unsubscribe (``/u/{token}``, RFC 8058), the archive (``/archive``), the
reviewer's preview of an edition awaiting approval (``/review/{token}``) and the
SendGrid Event Webhook (``/webhooks/sendgrid``).

Confirmation takes a button press (a POST), not just the GET: corporate mail
scanners open every link in a message, and would otherwise confirm addresses
whose owners never asked for the brief, which is what double opt-in prevents.

It faces the internet: every request body is capped (``BodyCap``), every answer carries
the security headers (``SecurityHeaders``), the subscribe form is rate-limited
(``rate_limits``), and X-Forwarded-* headers count only from ``[web.limits]
trusted_proxies``. No answer is built from the request's Host header: absolute URLs
come from ``publication.web_base_url``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import BackgroundTasks, FastAPI, Form, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from briefcast import events, subscribers, tokens
from briefcast.config import ConfigFileError, Settings
from briefcast.db import get_engine
from briefcast.resources import BUILTIN_TEMPLATES
from briefcast.web import archive, links, operator_page, subscriptions, webhook
from briefcast.web.body_cap import BodyCap
from briefcast.web.confirmation import confirmation_message, send_message
from briefcast.web.context import WebContext, page, web_context
from briefcast.web.headers import SecurityHeaders
from briefcast.web.rate_limits import StorageError, SubscribeLimits

log = logging.getLogger("briefcast.web")

ONE_CLICK_KEY, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"
PENDING_SWEEP_SECONDS = 600


def _templates(settings: Settings) -> Jinja2Templates:
    folders = [BUILTIN_TEMPLATES / "web"]
    if settings.edition.templates:
        folders.insert(0, settings.templates_dir / "web")
    env = Environment(loader=FileSystemLoader(folders), autoescape=True)
    return Jinja2Templates(env=env)


def _webhook_key(settings: Settings):
    text = settings.web.sendgrid_webhook_public_key
    if not text:
        if settings.web.allow_unsigned_webhook:
            log.warning(
                "UNSAFE: web.allow_unsigned_webhook = true: /webhooks/sendgrid believes unsigned "
                "events, so anyone can mark any subscriber bounced or complained. Set "
                "web.sendgrid_webhook_public_key instead."
            )
        else:
            log.info(
                "/webhooks/sendgrid refuses all events until web.sendgrid_webhook_public_key "
                "is set (SendGrid: Mail Settings, Signed Event Webhook)"
            )
        return None
    try:
        return webhook.load_public_key(text)
    except ValueError as exc:
        where = settings.source_file or "config"
        raise ConfigFileError(f"{where}: web.sendgrid_webhook_public_key: {exc}") from None


def _limits(settings: Settings) -> SubscribeLimits:
    limits = SubscribeLimits(settings.web.limits)
    if not limits.reachable():
        where = settings.source_file or "config"
        raise ConfigFileError(
            f"{where}: web.limits.storage_url: the rate-limit storage does not answer"
        )
    return limits


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title=f"{settings.publication.name} subscriptions",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,  # Starlette's redirect would be built from the Host header
    )
    app.state.web = WebContext(
        settings=settings,
        engine=get_engine(settings.database_url),
        secret=subscribers.link_secret(settings),
        templates=_templates(settings),
        limits=_limits(settings),
        webhook_key=_webhook_key(settings),
    )
    # Last added runs first: proxy headers, then security headers, then the body cap.
    app.add_middleware(BodyCap, max_bytes=settings.web.limits.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    if settings.web.limits.trusted_proxies:
        app.add_middleware(
            ProxyHeadersMiddleware, trusted_hosts=settings.web.limits.trusted_proxies
        )

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


def _client_ip(request: Request) -> str:
    # The peer, or the client a trusted proxy names (ProxyHeadersMiddleware set it).
    return request.client.host if request.client else "unknown"


def _try_later(request: Request, status_code: int):
    return page(
        request,
        "problem.html",
        status_code=status_code,
        title="Please try again later",
        message="We are getting more sign-ups than usual. Nothing was changed; "
        "please try again in an hour.",
    )


def _sweep_pending(ctx: WebContext) -> None:
    """Now and then, forget the sign-ups nobody confirmed in time."""
    now = ctx.clock()
    if now - ctx.pending_swept_at < PENDING_SWEEP_SECONDS:
        return
    ctx.pending_swept_at = now
    cutoff = datetime.fromtimestamp(now - ctx.settings.web.limits.pending_days * 86400, UTC)
    try:
        gone = subscriptions.expire_pending(ctx.engine, cutoff)
    except Exception as exc:  # noqa: BLE001 - housekeeping; the sign-up itself goes on
        log.error("expiring unconfirmed sign-ups failed: %s: %s", type(exc).__name__, exc)
        return
    if gone:
        log.info(
            "deleted %d sign-ups never confirmed within %d days",
            gone,
            ctx.settings.web.limits.pending_days,
        )


def subscribe(
    request: Request,
    background: BackgroundTasks,
    email: str = Form(""),
    name: str = Form(""),
):
    ctx = web_context(request)
    try:
        refused = ctx.limits.refused_request(_client_ip(request))
    except StorageError as exc:
        log.error("rate-limit storage unreachable, sign-up refused: %s", exc)
        return _try_later(request, 503)
    if refused:
        log.info("subscribe request refused: %s rate limit reached", refused)
        return _try_later(request, 429)
    try:
        address = subscribers.normalize(email)
    except subscribers.InvalidAddress as exc:
        return page(
            request, "subscribe.html", status_code=400, error=str(exc), email=email, name=name
        )
    _sweep_pending(ctx)
    readmit = ctx.settings.web.resubscribe_suppressed
    wanted = subscriptions.request_subscription(
        ctx.engine, address, name, readmit_suppressed=readmit
    )
    try:
        mail = wanted and ctx.limits.mail_allowed(address)
    except StorageError as exc:
        # The usual page all the same: an answer that differs here would tell who is listed.
        log.error("rate-limit storage unreachable, no confirmation mail sent: %s", exc)
        mail = False
    if mail:
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
    readmit = ctx.settings.web.resubscribe_suppressed
    if not subscriptions.confirm(ctx.engine, address, issued, readmit_suppressed=readmit):
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
