"""Screening cases, the dependency register and plan, and the audit log page.

Screening: deal files (YAML or JSON) in the workspace's ``cases/`` folder are listed and screened
on view (cached until the file changes); analysts may also upload a deal file, which is screened
and shown once, never stored. Register and plan: from the site file given to ``derisk serve
--site`` or ``WORKSPACE/site.yaml``, checked against the workspace's traffic.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from pathlib import Path
from typing import Any, Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from derisk.errors import DeriskError, InputError
from derisk.report import svg
from derisk.web.render import render
from derisk.web.session_views import Page, Visit, check_csrf, client, guarded, visit_of

MAX_DEAL_BYTES: Final = 256 * 1024
_CASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.(?:ya?ml|json)$")
_memo_cache: dict[tuple[str, int, int, str], dict[str, Any]] = {}
_plan_cache: dict[tuple[Any, ...], dict[str, Any]] = {}
_lock = threading.Lock()


def _case_files(visit: Visit) -> list[Path]:
    folder = visit.config.cases_dir
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and _CASE_NAME.match(p.name))


def screen_raw(raw: Any, source: str, workspace: Path | None) -> dict[str, Any]:
    """The ``derisk.screening/1`` document of a parsed deal (as ``derisk screen`` builds it)."""
    from derisk.screen.run import screen_raw as run_screen

    return run_screen(raw, source, workspace=workspace)


def _parse(text: bytes, name: str) -> Any:
    """A deal file's bytes under the screening's own limits (size, nesting, no aliases)."""
    from derisk.screen.document import parse_text

    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("not a readable YAML or JSON deal file (not UTF-8)", source=name) from None
    return parse_text(decoded, name, is_json=name.lower().endswith(".json"))


def _parse_and_screen(text: bytes, name: str, workspace: Path | None) -> dict[str, Any]:
    return screen_raw(_parse(text, name), name, workspace)


@guarded()
def screening_list(visit: Visit) -> Page:
    files = [p.name for p in _case_files(visit)]
    return Page(
        "screening.html.j2",
        {"files": files, "cases_dir": str(visit.config.cases_dir), "error": None},
        "screening",
    )


@guarded()
def screening_case(visit: Visit) -> Page:
    name = visit.request.path_params["name"]
    path = next((p for p in _case_files(visit) if p.name == name), None)
    if path is None:
        raise HTTPException(404)
    st = path.stat()
    key = (name, st.st_mtime_ns, st.st_size, dt.datetime.now(dt.UTC).date().isoformat())
    doc = _memo_cache.get(key)
    if doc is None:
        if st.st_size > MAX_DEAL_BYTES:
            raise HTTPException(413)
        doc = screen_raw(_parse(path.read_bytes(), name), name, visit.config.workspace)
        with _lock:
            _memo_cache[key] = doc
    timeline = svg.deadline_timeline(doc["regimes"], doc.get("as_of"))
    return Page(
        "memo.html.j2",
        {"doc": doc, "name": name, "uploaded": False, "timeline": timeline},
        f"screening-{name}",
    )


async def screening_upload(request: Request) -> Response:
    """POST a deal file (analyst or admin): screened and shown, not stored."""
    from starlette.concurrency import run_in_threadpool

    visit = visit_of(request)
    if visit is None:
        raise HTTPException(403)
    async with request.form(max_files=1, max_fields=5) as form:
        check_csrf(visit, form.get("csrf"))
        if not visit.user.can("analyst"):
            raise HTTPException(403)
        upload = form.get("deal")
        if upload is None or isinstance(upload, str):
            raise HTTPException(400, "choose a deal file")
        data = await upload.read(MAX_DEAL_BYTES + 1)
        name = (upload.filename or "upload.yaml")[-120:]
    if len(data) > MAX_DEAL_BYTES:
        raise HTTPException(413)
    visit.config.audit.record("screen-upload", user=visit.user.name, role=visit.user.role, path="/screening",
                              client=client(request), detail=name)  # fmt: skip
    try:
        # Parsing is work too: off the event loop, so one upload cannot stall every other page.
        doc = await run_in_threadpool(_parse_and_screen, data, name, visit.config.workspace)
    except InputError as exc:
        files = [p.name for p in _case_files(visit)]
        ctx = visit.context(files=files, cases_dir=str(visit.config.cases_dir), error=exc.one_line())
        return render(request, "screening.html.j2", ctx, status=400)
    timeline = svg.deadline_timeline(doc["regimes"], doc.get("as_of"))
    return render(
        request, "memo.html.j2", visit.context(doc=doc, name=name, uploaded=True, timeline=timeline)
    )


def site_plan(workspace: Path, site_file: Path) -> dict[str, Any]:
    """The ``derisk.reduce/1`` document of the site file, with the workspace's traffic."""
    from derisk.know.graph import load_graph
    from derisk.reduce.know_link import compelling_laws, know_resolver
    from derisk.reduce.register import build_register
    from derisk.reduce.report import analyse_site, site_document, third_country_jurisdictions
    from derisk.reduce.traffic import FLOW_COLUMNS
    from derisk.site import load_site
    from derisk.store.workspace import Workspace

    site = load_site(site_file)
    with Workspace.open(workspace, create=False, read_only=True) as ws:
        graph = load_graph(ws)
        flows = ws.read_flows(list(FLOW_COLUMNS))
    register = build_register(site, know_resolver(graph), source=site_file.name)
    result = analyse_site(register, flows=flows, workspace=workspace.name)
    laws = compelling_laws(third_country_jurisdictions(result))
    return site_document(result, source=site_file.name, laws=laws)


@guarded()
def plan(visit: Visit) -> Page:
    from derisk.store.readonly import fingerprint

    site_file = visit.config.site_file
    if site_file is None or not site_file.is_file():
        return Page(
            "plan.html.j2",
            {"doc": None, "site_file": str(site_file or ""), "error": None, "bars": None},
            "plan",
        )
    st = site_file.stat()
    key = (str(site_file), st.st_mtime_ns, st.st_size, fingerprint(visit.config.workspace))
    doc = _plan_cache.get(key)
    error = None
    if doc is None:
        try:
            doc = site_plan(visit.config.workspace, site_file)
        except DeriskError as exc:
            if "locked" in exc.message:
                raise
            error = exc.one_line()
        else:
            with _lock:
                _plan_cache.clear()
                _plan_cache[key] = doc
    bars = svg.plan_bars(doc["plan"]["steps"]) if doc and doc.get("plan") else None
    return Page(
        "plan.html.j2", {"doc": doc, "site_file": site_file.name, "error": error, "bars": bars}, "plan"
    )


@guarded("admin")
def audit(visit: Visit) -> Page:
    return Page("audit.html.j2", {"rows": visit.config.audit.tail(300)}, "audit")


def routes() -> list[BaseRoute]:
    return [
        Route("/screening", screening_list, methods=["GET"]),
        Route("/screening", screening_upload, methods=["POST"]),
        Route("/screening/{name}", screening_case),
        Route("/plan", plan),
        Route("/audit", audit),
    ]
