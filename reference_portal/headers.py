"""The one middleware that puts the security headers on every response."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reference_portal.settings import CONTENT_SECURITY_POLICY

STATIC_PREFIX = "/static/"
STATIC_CACHE_CONTROL = "public, max-age=3600"


class SecurityHeadersMiddleware:
    """Adds HSTS (when given), CSP, nosniff, Referrer-Policy and Cache-Control.

    Everything is ``no-store`` except successfully served static assets, so error pages and
    redirects under /static are not cached either.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        hsts: str | None,
        csp: str = CONTENT_SECURITY_POLICY,
        nosniff: bool = True,
    ) -> None:
        self.app = app
        self.hsts = hsts
        self.csp = csp
        self.nosniff = nosniff

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_static = str(scope.get("path", "")).startswith(STATIC_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if self.hsts:
                    headers["Strict-Transport-Security"] = self.hsts
                elif "strict-transport-security" in headers:
                    del headers["Strict-Transport-Security"]
                headers["Content-Security-Policy"] = self.csp
                if self.nosniff:
                    headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                status = int(message["status"])
                if is_static and status in (200, 206, 304):
                    headers["Cache-Control"] = STATIC_CACHE_CONTROL
                elif "cache-control" not in headers:
                    # A handler may set its own (the patient_data_cacheable weakness does).
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
