"""Login, logout, and the guard every page goes through (session, role, CSRF, audit, export)."""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from derisk.web.auth import User
from derisk.web.config import Config
from derisk.web.render import N_, render, request_lang

SESSION_COOKIE: Final = "derisk_session"
LOGIN_COOKIE: Final = "derisk_login"
_SAFE_NEXT = re.compile(r"^/[A-Za-z0-9/_.\-?=&%]*$")


@dataclass
class Visit:
    """Who is asking, in which language, with which form token."""

    request: Request
    config: Config
    user: User
    csrf: str
    lang: str

    def context(self, **extra: Any) -> dict[str, Any]:
        return {"user": self.user, "csrf": self.csrf, "lang": self.lang, **extra}


@dataclass
class Page:
    """What a page handler returns: a template, its context and the base name of exported files."""

    template: str
    context: dict[str, Any]
    name: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: Flows behind the page, for ``?export=csv`` (None: the page has no such table).
    csv_rows: list[dict[str, Any]] | None = None


def config_of(request: Request) -> Config:
    cfg: Config = request.app.state.derisk
    return cfg


def client(request: Request) -> str | None:
    return request.client.host if request.client else None


def visit_of(request: Request) -> Visit | None:
    cfg = config_of(request)
    found = cfg.sessions.read(request.cookies.get(SESSION_COOKIE), cfg.users.load())
    if found is None:
        return None
    return Visit(request, cfg, found[0], found[1], request_lang(request))


def safe_next(value: str | None) -> str:
    if value and _SAFE_NEXT.match(value) and not value.startswith("//") and len(value) < 500:
        return value
    return "/"


def check_csrf(visit: Visit, token: Any) -> None:
    if not isinstance(token, str) or not hmac.compare_digest(token, visit.csrf):
        raise HTTPException(403)


def guarded(
    role: str = "viewer",
) -> Callable[[Callable[[Visit], Page | Response]], Callable[[Request], Response]]:
    """Wrap a page handler: require a session with ``role``, audit the view, serve exports."""
    from derisk.web.export import export_response

    def wrap(handler: Callable[[Visit], Page | Response]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            visit = visit_of(request)
            if visit is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={_quote(safe_next(target))}", status_code=303)
            if not visit.user.can(role):
                raise HTTPException(403)
            fmt = request.query_params.get("export")
            if fmt is not None and fmt not in ("html", "pdf", "csv"):
                raise HTTPException(400, "export must be html, pdf or csv")
            result = handler(visit)
            if fmt == "csv" and (isinstance(result, Response) or result.csv_rows is None):
                raise HTTPException(400, "this page has no table of flows to export as CSV")
            action = "export" if fmt or request.url.path.startswith("/report/") else "view"
            visit.config.audit.record(
                action, user=visit.user.name, role=visit.user.role, client=client(request),
                path=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
                detail=fmt,
            )  # fmt: skip
            if isinstance(result, Response):
                return result
            if fmt:
                return export_response(request, visit, result, fmt)
            response = render(request, result.template, visit.context(**result.context), status=result.status)
            response.headers.update(result.headers)  # e.g. Refresh on the alert list; not on exports
            return response

        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="/")


def _login_form(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    cfg = config_of(request)
    cookie, token = cfg.sessions.login_token()
    no_accounts = not cfg.users.load()
    response = render(
        request,
        "login.html.j2",
        {
            "csrf": token,
            "error": error,
            "next": safe_next(request.query_params.get("next")),
            "no_accounts": no_accounts,
            "workspace": str(cfg.workspace),
        },
        status=status,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        cookie,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=cfg.secure_cookies,
        path="/login",
    )
    return response


def login_page(request: Request) -> Response:
    if visit_of(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return _login_form(request)


async def login_submit(request: Request) -> Response:
    cfg = config_of(request)
    form = await request.form(max_files=0, max_fields=10)
    token = form.get("csrf")
    if not cfg.sessions.check_login_token(
        request.cookies.get(LOGIN_COOKIE), token if isinstance(token, str) else None
    ):
        raise HTTPException(403)
    name = str(form.get("username") or "")[:64]
    password = str(form.get("password") or "")
    target = safe_next(str(form.get("next") or "/"))
    address = client(request)
    # Cheap checks first: a refused attempt never costs a password hash.
    verdict = cfg.gate.check(address, name)
    if not verdict.allowed:
        cfg.audit.record(
            "login-refused", user=name, role=None, path="/login", client=address, detail=verdict.reason
        )
        return _login_form(request, error=N_("Too many failed attempts; wait five minutes."), status=429)
    from starlette.concurrency import run_in_threadpool

    if not await run_in_threadpool(cfg.gate.acquire):
        cfg.audit.record("login-refused", user=name, role=None, path="/login", client=address, detail="busy")
        return _login_form(request, error=N_("The server is busy; try again in a moment."), status=503)
    try:
        user = await run_in_threadpool(cfg.users.authenticate, name, password)
    finally:
        cfg.gate.release()
    if user is None:
        cfg.gate.failed(address, name)
        cfg.audit.record("login-failed", user=name, role=None, path="/login", client=address)
        return _login_form(request, error=N_("Unknown user name or wrong password."), status=401)
    cfg.gate.succeeded(name)
    cookie, _ = cfg.sessions.issue(user)
    cfg.audit.record("login", user=user.name, role=user.role, path="/login", client=client(request))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=cfg.sessions.ttl,
        httponly=True,
        samesite="strict",
        secure=cfg.secure_cookies,
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


async def logout(request: Request) -> Response:
    visit = visit_of(request)
    if visit is None:
        return RedirectResponse("/login", status_code=303)
    form = await request.form(max_files=0, max_fields=5)
    check_csrf(visit, form.get("csrf"))
    visit.config.sessions.revoke(visit.csrf)
    visit.config.audit.record(
        "logout", user=visit.user.name, role=visit.user.role, path="/logout", client=client(request)
    )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def routes() -> list[Route]:
    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
