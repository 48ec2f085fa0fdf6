"""What every route needs, built once by ``create_app`` and kept on ``app.state.web``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from briefcast.config import Settings
from briefcast.web.throttle import ResendGuard


@dataclass
class WebContext:
    settings: Settings
    engine: Engine
    secret: str
    templates: Jinja2Templates
    resend_guard: ResendGuard
    webhook_key: Any = None  # an EllipticCurvePublicKey when verification is configured


def web_context(request: Request) -> WebContext:
    return request.app.state.web


def page(request: Request, template: str, /, status_code: int = 200, **values: Any):
    """Render one of the templates/web pages with the publication in its context."""
    ctx = web_context(request)
    values.setdefault("publication", ctx.settings.publication)
    values.setdefault("root", request.scope.get("root_path", "").rstrip("/"))
    return ctx.templates.TemplateResponse(request, template, values, status_code=status_code)
