"""The operator page, ``/operator``: the edition report and the 30-edition trend.

Off unless ``[web] operator_token`` is set. The operator types the token once;
the page then keeps an HMAC of it (never the token) in an HttpOnly,
SameSite=Strict cookie scoped to /operator, so the token stays out of URLs,
logs and browser history.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from limits import parse_many
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from briefcast.report import edition_report, recent_editions
from briefcast.report_views import HEADERS, channel_cells, trend_svg
from briefcast.web.context import page, web_context
from briefcast.web.rate_limits import StorageError, client_key

COOKIE = "briefcast_operator"
COOKIE_SECONDS = 12 * 3600
# Wrong tokens one client may try, counted in the web app's rate-limit storage.
FAILED_SIGN_INS = parse_many("5/minute;30/day")

router = APIRouter()


def _token(request: Request) -> str | None:
    token = web_context(request).settings.web.operator_token
    return token.get_secret_value() if token is not None else None


def _pass(request: Request, token: str) -> str:
    key = web_context(request).secret.encode()
    return hmac.new(key, b"operator\0" + token.encode(), hashlib.sha256).hexdigest()


def _signed_in(request: Request, token: str) -> bool:
    return hmac.compare_digest(request.cookies.get(COOKIE, ""), _pass(request, token))


def _failures(request: Request) -> tuple:
    ctx = web_context(request)
    client = client_key(request.client.host if request.client else "")
    return ctx.limits.limiter, (ctx.limits.prefix, "operator-sign-in", client)


def _may_try(request: Request) -> bool:
    limiter, ids = _failures(request)
    return all(limiter.test(item, *ids) for item in FAILED_SIGN_INS)


def _count_failure(request: Request) -> None:
    limiter, ids = _failures(request)
    for item in FAILED_SIGN_INS:
        limiter.hit(item, *ids)


def _off(request: Request):
    return page(
        request,
        "problem.html",
        status_code=404,
        title="Not here",
        message="This page is not enabled.",
    )


def _report_view(request: Request, edition: str | None):
    ctx = web_context(request)
    if edition is None:
        latest = recent_editions(ctx.engine, count=1)
        edition = latest[0] if latest else None
    if edition is None:
        return None
    report = edition_report(ctx.engine, ctx.settings, edition)
    return {
        "edition_id": edition,
        "headers": HEADERS,
        "rows": [channel_cells(s) for s in report.channels],
        "channels": report.channels,
        "trend": report.trend,
        "chart": Markup(trend_svg(report.trend)),  # built from escaped values only
    }


@router.get("/operator")
async def operator_page(request: Request):
    token = _token(request)
    if token is None:
        return _off(request)
    if not _signed_in(request, token):
        return page(request, "operator_login.html")
    wanted = request.query_params.get("date")
    if wanted is not None:
        try:
            wanted = date.fromisoformat(wanted).isoformat()
        except ValueError:
            return page(request, "operator_login.html", status_code=400, error="Not a date.")
    view = await run_in_threadpool(_report_view, request, wanted)
    response = page(request, "operator.html", view=view)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/operator")
async def operator_sign_in(request: Request, token: str = Form("")):
    expected = _token(request)
    if expected is None:
        return _off(request)
    try:
        if not await run_in_threadpool(_may_try, request):
            message = "Too many wrong tokens from here; try again later."
            return page(request, "operator_login.html", status_code=429, error=message)
        if not hmac.compare_digest(token.encode(), expected.encode()):
            await run_in_threadpool(_count_failure, request)
            return page(request, "operator_login.html", status_code=403, error="Wrong token.")
    except StorageError:
        message = "Sign-in is unavailable for a moment."
        return page(request, "operator_login.html", status_code=503, error=message)
    root = request.scope.get("root_path", "").rstrip("/")
    response = RedirectResponse(f"{root}/operator", status_code=303)
    response.set_cookie(
        COOKIE,
        _pass(request, expected),
        max_age=COOKIE_SECONDS,
        path=f"{root}/operator",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response
