"""The dashboard's Starlette application: ``create_app(workspace)``.

Server-rendered Jinja2 templates (autoescaped), one small JavaScript file, read-only time-limited
access to the workspace, accounts with roles, CSRF tokens on every form, an audit log and strict
security headers. See docs/dashboard.md.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from derisk.errors import DeriskError
from derisk.web import pages, session_views
from derisk.web.audit import AuditLog
from derisk.web.auth import Sessions, UserStore, load_secret, web_dir
from derisk.web.config import Config
from derisk.web.readonly import WorkspaceReader
from derisk.web.render import error_page

log = logging.getLogger(__name__)

MAX_BODY: Final = 2 * 1024 * 1024
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Final = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
#: Sent only when TLS is certain (the server's own, or a proxy the operator vouches for).
HSTS: Final = (b"strict-transport-security", b"max-age=31536000")
LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class SecurityHeaders:
    """Adds the security headers to every response; the CSP unless a response set its own."""

    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        self.extra = (*SECURITY_HEADERS, *((HSTS,) if hsts else ()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", CSP.encode()))
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                headers.extend(self.extra)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes (413) and streamed bodies of unknown length (411)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        status = None
        if length is None:
            # No length: an empty body is fine, a streamed (chunked) one is refused.
            status = 411 if b"transfer-encoding" in headers else None
        else:
            try:
                status = 413 if int(length) > self.limit else None
            except ValueError:
                status = 400
        if status is not None:
            response = error_page(Request(scope), status)
            await response(scope, receive, send)
            return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413)
            return message

        await self.app(scope, bounded, send)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 403:
        _audit_denied(request)
    detail = exc.detail if isinstance(exc, HTTPException) and status not in (404, 405) else None
    return error_page(request, status, detail)


def _audit_denied(request: Request) -> None:
    """A refused request (wrong role, missing or wrong CSRF token) goes into the audit log."""
    from derisk.web.session_views import client, visit_of

    config: Config = request.app.state.derisk
    visit = visit_of(request)
    query = f"?{request.url.query}" if request.url.query else ""
    config.audit.record(
        "denied",
        user=visit.user.name if visit else None,
        role=visit.user.role if visit else None,
        path=f"{request.method} {request.url.path}{query}",
        client=client(request),
    )


async def _derisk_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DeriskError)
    status = {"NotFoundError": 404, "UsageError": 400, "InputError": 400}.get(type(exc).__name__, 503)
    if type(exc).__name__ == "StoreError" and "locked" in exc.message:
        return error_page(request, 503, "locked")
    return error_page(request, status, exc.one_line())


async def _crash(request: Request, exc: Exception) -> Response:
    log.error("internal error on %s: %s", request.url.path, type(exc).__name__, exc_info=exc)
    return error_page(request, 500)


def create_app(
    workspace: Path,
    *,
    host: str = "127.0.0.1",
    site_file: Path | None = None,
    cases_dir: Path | None = None,
    time_limit: float = 5.0,
    hold: float = 2.0,
    allowed_hosts: list[str] | None = None,
    warm: bool = True,
    tls: bool = False,
) -> Starlette:
    """The dashboard over ``workspace`` (read-only).

    ``host`` decides the allowed Host headers; ``tls`` says the browser reaches it over TLS (the
    server's own certificate, or a TLS proxy in front): then cookies are Secure and HSTS is sent.
    Off loopback cookies are Secure in any case.
    """
    workspace = Path(workspace)
    reader = WorkspaceReader(workspace, time_limit=time_limit, idle=hold)
    if site_file is None:
        # WORKSPACE/site.yaml, else the site file beside the workspace (as `derisk demo` lays it out).
        site_file = next(
            (p for p in (workspace / "site.yaml", workspace.parent / "site.yaml") if p.is_file()), None
        )
    config = Config(
        workspace=workspace,
        reader=reader,
        users=UserStore(workspace),
        sessions=Sessions(load_secret(workspace), revoked_file=web_dir(workspace) / "revoked.json"),
        audit=AuditLog(workspace),
        secure_cookies=tls or not is_loopback(host),
        hsts=tls,
        site_file=site_file,
        cases_dir=cases_dir or workspace / "cases",
    )
    hosts = allowed_hosts or [*LOOPBACK_NAMES, host.strip("[]")]
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        HTTPException: _http_error,
        DeriskError: _derisk_error,
        Exception: _crash,
    }
    static = Path(__file__).parent / "static"
    routes = [
        *session_views.routes(),
        *pages.routes(),
        Mount("/static", app=StaticFiles(directory=static), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders, hsts=tls),
            Middleware(TrustedHostMiddleware, allowed_hosts=hosts),
            Middleware(BodyLimit),
        ],
        exception_handlers=handlers,
    )
    app.state.derisk = config
    if warm:
        threading.Thread(target=_warm, args=(reader,), daemon=True, name="derisk-warm").start()
    return app


def _warm(reader: WorkspaceReader) -> None:
    try:
        reader.warm()
    except DeriskError as exc:
        log.warning("could not prepare the dashboard's data yet: %s", exc.one_line())


__all__ = ["Config", "Route", "create_app", "is_loopback"]
