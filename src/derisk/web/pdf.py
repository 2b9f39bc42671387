"""HTML to PDF with WeasyPrint (fonts: DejaVu from Debian's fonts-dejavu-core, via fontconfig).

WeasyPrint is given the page as a string with no base URL and a URL fetcher that refuses every
request, so a report can never make the server fetch anything (network or file).
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from derisk.errors import DataError

log = logging.getLogger(__name__)


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> NoReturn:
    raise ValueError(f"derisk reports do not fetch resources ({url[:60]})")


def html_to_pdf(html: str) -> bytes:
    """The PDF of a self-contained HTML document."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # pragma: no cover - a broken installation
        raise DataError(f"PDF export needs WeasyPrint and its system libraries ({exc})") from None
    for name in ("weasyprint", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)
    pdf: bytes = HTML(string=html, base_url=None, url_fetcher=_no_fetch).write_pdf()
    return pdf
