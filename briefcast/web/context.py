"""What every route needs, built once by ``create_app`` and kept on ``app.state.web``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from briefcast.config import Settings
from briefcast.render.palette import palette
from briefcast.web.rate_limits import SubscribeLimits


@dataclass
class WebContext:
    settings: Settings
    engine: Engine
    secret: str
    templates: Jinja2Templates
    limits: SubscribeLimits
    webhook_key: Any = None  # an EllipticCurvePublicKey when verification is configured
    clock: Callable[[], float] = time.time
    pending_swept_at: float = field(default=float("-inf"))


def web_context(request: Request) -> WebContext:
    return request.app.state.web


def page(request: Request, template: str, /, status_code: int = 200, **values: Any):
    """Render one of the templates/web pages with the publication in its context."""
    ctx = web_context(request)
    values.setdefault("publication", ctx.settings.publication)
    values.setdefault("palette", palette(ctx.settings.design.brand_color))  # the email's colours
    values.setdefault("root", request.scope.get("root_path", "").rstrip("/"))
    return ctx.templates.TemplateResponse(request, template, values, status_code=status_code)
