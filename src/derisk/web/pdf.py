"""HTML to PDF with WeasyPrint (fonts: DejaVu from Debian's fonts-dejavu-core, via fontconfig).

WeasyPrint is given the page as a string with no base URL and a URL fetcher that refuses every
request (a :class:`weasyprint.urls.URLFetcher` whose ``fetch`` raises, with no protocol allowed), so
a report can never make the server fetch anything, network or file; the page still renders, without
the resource.

Rendering is bounded: at most ``MAX_RENDERS`` PDFs are made at once (more wait up to
``WAIT_SECONDS``, then get "busy"), and a page larger than ``MAX_HTML_BYTES`` is refused (its HTML
export remains), since WeasyPrint's time and memory grow with the page.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Final

from derisk.errors import DataError, UsageError

log = logging.getLogger(__name__)

MAX_RENDERS: Final = 2
WAIT_SECONDS: Final = 10.0
MAX_HTML_BYTES: Final = 8 * 1024 * 1024
_SLOTS: Final = threading.BoundedSemaphore(MAX_RENDERS)


class Busy(DataError):
    """Too many PDF exports at once."""


def _fetcher() -> Any:
    from weasyprint.urls import URLFetcher

    class NoFetch(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            raise ValueError(f"derisk reports do not fetch resources ({url[:60]})")

    return NoFetch(allowed_protocols=(), fail_on_errors=False)


def html_to_pdf(html: str) -> bytes:
    """The PDF of a self-contained HTML document."""
    if len(html) > MAX_HTML_BYTES:
        raise UsageError(
            f"this page is too large for a PDF ({len(html) // 1_000_000} MB of HTML); export it as HTML"
        )
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # pragma: no cover - a broken installation
        raise DataError(f"PDF export needs WeasyPrint and its system libraries ({exc})") from None
    for name in ("weasyprint", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if not _SLOTS.acquire(timeout=WAIT_SECONDS):
        raise Busy("too many PDF exports at once; try again in a moment")
    try:
        pdf: bytes = HTML(string=html, base_url=None, url_fetcher=_fetcher()).write_pdf()
    finally:
        _SLOTS.release()
    return pdf
