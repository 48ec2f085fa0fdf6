"""Security headers on every answer of the web app.

The archive serves feed content (through the sanitizer, but still other people's HTML) on
the same origin as the subscribe and unsubscribe forms, so its pages also get a CSP
``sandbox``: no script runs there, and the page counts as a foreign origin even if one did.
HSTS only over https (directly, or as a trusted proxy's X-Forwarded-Proto says).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# No scripts anywhere; styles inline (the pages' own and the email's); images from anywhere
# (the edition's pictures live on the newsroom's servers), forms only to ourselves.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SANDBOX = (
    "; sandbox allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation"
)

PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=(), interest-cohort=()"
)

# Token links must not leak through the Referer header, nor be framed or cached.
ALWAYS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": PERMISSIONS_POLICY,
}
HSTS = "max-age=31536000; includeSubDomains"

# Paths whose answers carry a per-person token or an unpublished edition.
PRIVATE_PREFIXES = ("/u/", "/confirm/", "/review/")
EDITION_PREFIXES = ("/archive/", "/review/")


def app_path(scope: Scope) -> str:
    """The path inside the app, without the proxy's prefix (servers differ on including it)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = app_path(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers.setdefault(name, value)
                policy = CONTENT_SECURITY_POLICY
                if path.startswith(EDITION_PREFIXES):
                    policy += SANDBOX
                headers["Content-Security-Policy"] = policy
                if scope.get("scheme") == "https":
                    headers["Strict-Transport-Security"] = HSTS
                if path.startswith(PRIVATE_PREFIXES):
                    headers["Cache-Control"] = "no-store"
                    headers["X-Robots-Tag"] = "noindex, nofollow"
                if "server" in headers:
                    del headers["server"]
            await send(message)

        await self.app(scope, receive, send_with_headers)
