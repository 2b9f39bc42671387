"""Every page as a downloadable report: a self-contained HTML file or a PDF."""

from __future__ import annotations

import csv
import io
import re
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import Response

from derisk.safetext import csv_cell
from derisk.store.readonly import FLOW_COLUMNS
from derisk.web.pdf import html_to_pdf
from derisk.web.render import environment, inline_css

if TYPE_CHECKING:
    from derisk.web.session_views import Page, Visit

#: Exported HTML has its stylesheet inline and no scripts.
EXPORT_CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def export_html(visit: Visit, page: Page) -> str:
    context = visit.context(**page.context)
    # A downloaded file has no server to send headers: the policy travels inside it.
    context.update(export=True, css=inline_css(), path=visit.request.url.path, export_csp=EXPORT_CSP)
    return environment(visit.lang).get_template(page.template).render(**context)


def flows_csv(rows: list[dict[str, Any]]) -> str:
    """Flows as CSV; every cell through safetext.csv_cell (no formulas, no control characters)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FLOW_COLUMNS)
    for row in rows:
        writer.writerow([csv_cell(None if row.get(c) is None else str(row.get(c))) for c in FLOW_COLUMNS])
    return out.getvalue()


def export_response(request: Request, visit: Visit, page: Page, fmt: str) -> Response:
    base = _FILENAME.sub("-", f"derisk-{page.name}-{visit.lang}").strip("-")[:100]
    if fmt == "csv":
        return Response(
            flows_csv(page.csv_rows or []).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{base}-flows.csv"'},
        )
    html = export_html(visit, page)
    if fmt == "pdf":
        body, media, ext = html_to_pdf(html), "application/pdf", "pdf"
    else:
        body, media, ext = html.encode("utf-8"), "text/html; charset=utf-8", "html"
    return Response(
        body,
        media_type=media,
        headers={
            "content-disposition": f'attachment; filename="{base}.{ext}"',
            "content-security-policy": EXPORT_CSP,
        },
    )
