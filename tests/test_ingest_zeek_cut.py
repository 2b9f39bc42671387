"""Zeek's columns without Zeek's header (``zeek-cut``'s output) are refused with what they are.

64 of Zeek's own test baselines swept (``docs/evaluation-formats.md``) and a public ``conn.log``
are such tables; derisk called them "not a capture ..., a Zeek log, ...". The fixture is one of
those baselines (``zeek-cut -m uid service history``, see ``tests/fixtures/README.md``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from derisk.errors import InputError
from derisk.ingest import resolve_inputs

FIXTURES = Path(__file__).parent / "fixtures" / "zeek"
SAID = r"Zeek log columns without Zeek's header .*zeek-cut -c"


def test_zeek_cut_with_names_is_refused_with_the_reason() -> None:
    with pytest.raises(InputError, match=SAID):
        resolve_inputs([FIXTURES / "zeek_cut" / "conn-cut.log"])


@pytest.mark.parametrize("start", [0, 1])
def test_zeek_cut_records_alone(tmp_path: Path, start: int) -> None:
    """``zeek-cut`` without options: the records only, starting with ``ts`` (0) or the ``uid`` (1)."""
    rows = [
        line for line in (FIXTURES / "scope_sep" / "conn.log").read_text().splitlines() if line[:1] != "#"
    ]
    path = tmp_path / "conn.log"
    path.write_text("".join("\t".join(row.split("\t")[start:]) + "\n" for row in rows))
    with pytest.raises(InputError, match=SAID):
        resolve_inputs([path])


def test_other_text_keeps_the_general_message(tmp_path: Path) -> None:
    path = tmp_path / "conn.log"
    path.write_text("MongooseServerSelectionError: connect ECONNREFUSED 127.0.0.1:27017\n")
    with pytest.raises(InputError, match="not a capture"):
        resolve_inputs([path])
