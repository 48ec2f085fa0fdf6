"""How ``briefcast web`` runs the app under uvicorn; the tests serve it the same way."""

from __future__ import annotations

import uvicorn

from briefcast.config import Settings


def server_config(app, settings: Settings, **options) -> uvicorn.Config:
    """No ``server`` banner; forwarded headers are the app's business (it believes them only
    from ``[web.limits] trusted_proxies``, where uvicorn would trust 127.0.0.1 by default);
    the proxy's path prefix from ``[web] root_path``."""
    options.setdefault("host", settings.web.host)
    options.setdefault("port", settings.web.port)
    return uvicorn.Config(
        app,
        root_path=settings.web.root_path,
        proxy_headers=False,
        server_header=False,
        **options,
    )
