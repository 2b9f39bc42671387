"""Server name → registrable domain, with tldextract's bundled public suffix list (no network).

Only the ICANN section of the list is used, so ``bucket.s3.amazonaws.com`` belongs to
``amazonaws.com`` (the operator), not to a customer's private suffix.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import tldextract

#: The one public-suffix splitter of derisk (building one parses the bundled list: about 30 ms).
EXTRACT: Final = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=False)
_MAX_NAME = 253
_BLANK_OR_CONTROL: Final = re.compile(r"[\x00-\x20\s]")


@lru_cache(maxsize=200_000)
def registrable_domain(name: str) -> str | None:
    """``eu.oss.aliyuncs.com`` → ``aliyuncs.com``; None for IP literals, junk and over-long names."""
    candidate = name.strip().rstrip(".").lower()
    if not candidate or len(candidate) > _MAX_NAME or _BLANK_OR_CONTROL.search(candidate):
        return None
    parts = EXTRACT(candidate)
    if not parts.suffix or not parts.domain:
        return None
    return f"{parts.domain}.{parts.suffix}"


def registrable_domains(names: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Vectorised over the distinct names of a column."""
    uniques = pc.unique(names)
    mapped = pa.array(
        [registrable_domain(n) if n is not None else None for n in uniques.to_pylist()], pa.string()
    )
    return pc.take(mapped, pc.index_in(names, value_set=uniques))
