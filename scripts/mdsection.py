"""Replace one ``## Heading`` section of a Markdown results file (docs/benchmarks.md, docs/security.md).

Benchmarks and load tests print their results and, with ``--markdown FILE``, write them into the
section of ``FILE`` that starts with the same heading, leaving the rest of the file as it is; a
section not yet there is appended.
"""

from __future__ import annotations

import re
from pathlib import Path


def replace_section(path: Path, text: str, *, title: str = "# Benchmarks") -> None:
    """Write ``text`` (which starts with its ``## `` heading line) into ``path`` in place of that section."""
    heading = text.splitlines()[0]
    if not heading.startswith("## "):
        raise ValueError("a section starts with a '## ' heading")
    old = path.read_text(encoding="utf-8") if path.exists() else title + "\n"
    pattern = re.compile(re.escape(heading) + r"\n.*?(?=\n## |\Z)", re.S)
    body = text.rstrip("\n") + "\n"
    new = pattern.sub(lambda _m: body, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + body
    path.write_text(new, encoding="utf-8")
