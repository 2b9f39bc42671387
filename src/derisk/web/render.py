"""Templates of the dashboard: one Jinja2 environment per language, autoescaped, strict."""

from __future__ import annotations

import datetime as dt
import logging
from functools import lru_cache
from importlib import resources
from typing import Any, Final
from urllib.parse import quote, urlencode

from jinja2 import Environment
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from derisk import __version__, i18n
from derisk.report.pages import page_environment
from derisk.safetext import visible

log = logging.getLogger(__name__)

LANG_COOKIE: Final = "derisk_lang"


def N_(text: str) -> str:
    """Marks a message for extraction; translated where it is shown."""
    return text


STATUS_TEXT: Final = {
    400: N_("The request is not valid."),
    401: N_("Log in first."),
    403: N_("You are not allowed to do this (your role, or a missing or stale form token)."),
    404: N_("There is nothing at this address."),
    405: N_("This address does not accept that method."),
    411: N_("A request body must state its length."),
    413: N_("The request is too large."),
    429: N_("Too many requests; wait a few minutes."),
    500: N_("Something went wrong inside derisk; nothing was changed. The event is in the server log."),
    503: N_("The workspace cannot be read right now."),
}
LOCKED_TEXT: Final = N_(
    "The workspace is locked by another derisk process (derisk analyze writes it). "
    "The dashboard and the analysis take turns: try again when the analysis has finished."
)
#: Values shown through _() in templates: severities and roles.
SEVERITIES: Final = (N_("critical"), N_("high"), N_("medium"), N_("low"), N_("info"))
ROLE_NAMES: Final = (N_("viewer"), N_("analyst"), N_("admin"))


def shown(value: Any, limit: int = 200) -> str:
    """Network text for display: control characters made visible, bounded (escaping is Jinja2's)."""
    return visible(None if value is None else str(value), limit)


def when(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, str) and "T" in value:
        return value.replace("T", " ")[:19] + " UTC"
    return "–" if value in (None, "") else str(value)


@lru_cache(maxsize=8)
def environment(lang: str) -> Environment:
    env = page_environment("derisk.web", lang)
    env.filters["shown"] = shown
    env.filters["when"] = when
    env.filters["q"] = lambda text: quote(str(text), safe="")
    env.globals["version"] = __version__
    env.globals["languages"] = i18n.NATIVE_NAMES
    env.globals["known_labels"] = frozenset(SEVERITIES + ROLE_NAMES)
    return env


@lru_cache(maxsize=1)
def inline_css() -> Markup:
    """The stylesheet, for exported files (which must stand alone)."""
    css = (resources.files("derisk.web") / "static" / "dashboard.css").read_text(encoding="utf-8")
    return Markup(css.replace("</", "<\\/"))  # noqa: S704 - our own file, not user input


def request_lang(request: Request) -> str:
    """Query parameter ``lang``, else the language cookie, else Accept-Language, else English."""
    return (
        i18n.pick(request.query_params.get("lang"))
        or i18n.pick(request.cookies.get(LANG_COOKIE))
        or i18n.negotiate(request.headers.get("accept-language"))
    )


def gettext(lang: str, text: str) -> str:
    return i18n.gettext_for(lang).gettext(text)


def same_page(request: Request, **changes: str) -> str:
    """This page's address with some query parameters changed (``export``, ``lang``), others kept."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in changes and k != "export"]
    params += list(changes.items())
    return "?" + urlencode(params[:20])


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    lang = context.setdefault("lang", request_lang(request))
    context.setdefault("user", None)
    context.setdefault("csrf", "")
    context.setdefault("export", False)
    context.setdefault("path", request.url.path)
    context.setdefault("here", lambda **changes: same_page(request, **changes))
    html = environment(lang).get_template(name).render(**context)
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") and i18n.pick(request.query_params.get("lang")):
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="strict")
    return response


def error_page(request: Request, status: int, detail: str | None = None) -> Response:
    """A page for an HTTP error, in the user's language; never a traceback."""
    lang = "en"
    try:
        lang = request_lang(request)
        text = gettext(lang, STATUS_TEXT.get(status, "The request failed."))
        if detail == "locked":
            text = gettext(lang, LOCKED_TEXT)
            detail = None
        return render(
            request,
            "error.html.j2",
            {"status": status, "text": text, "detail": detail, "lang": lang},
            status=status,
        )
    except Exception as exc:  # the error page itself must never fail with a traceback
        log.error("error page failed: %s", type(exc).__name__)
        return PlainTextResponse(f"HTTP {status}", status_code=status)
