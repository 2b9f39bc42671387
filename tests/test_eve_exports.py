"""EVE events re-saved as a JSON array or pretty-printed: refused with the command that converts them.

Found by the sweep of public EVE files (``docs/evaluation-formats.md``): four of them were Suricata's
events saved by ``jq -s``-like tools as one JSON array, one was pretty-printed; derisk called them
"not a capture ..." or a Zeek log with a bad first line. The samples here are the project's real
Suricata output (``tests/fixtures/eve/firefox.eve.json``) saved those two ways.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from derisk.errors import InputError
from derisk.ingest import read_input, resolve_inputs

EVE = Path(__file__).parent / "fixtures" / "eve" / "firefox.eve.json"


def _events() -> list[object]:
    return [json.loads(line) for line in EVE.read_text().splitlines() if line.strip()]


def _flows(path: Path) -> pa.Table:
    (spec,) = resolve_inputs([path])
    return pa.Table.from_batches(list(read_input(spec)))


@pytest.mark.parametrize(
    ("layout", "said"),
    [
        ("array", r"EVE events as one JSON array, .*jq -c '\.\[\]' FILE > eve\.json"),
        ("array-pretty", r"EVE events as one JSON array"),
        ("pretty", r"EVE events pretty-printed over several lines, .*jq -c \. FILE > eve\.json"),
    ],
)
def test_reformatted_eve_is_refused_with_the_conversion(tmp_path: Path, layout: str, said: str) -> None:
    events = _events()
    path = tmp_path / "eve.json"
    if layout == "array":
        path.write_text(json.dumps(events))
    elif layout == "array-pretty":
        path.write_text(json.dumps(events, indent=2))
    else:
        path.write_text("\n".join(json.dumps(e, indent=4) for e in events) + "\n")
    with pytest.raises(InputError, match=said) as caught:
        resolve_inputs([path])
    assert str(path) in str(caught.value)
    # What the hint's command writes (one compact object per line) gives the fixture's flows.
    converted = tmp_path / "converted" / "eve.json"
    converted.parent.mkdir()
    converted.write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events))
    assert _flows(converted).equals(_flows(EVE))
    assert _flows(EVE).num_rows > 0


def test_json_without_event_type_is_not_taken_for_eve(tmp_path: Path) -> None:
    """A Zeek JSON log pretty-printed is not EVE: no hint about Suricata."""
    path = tmp_path / "conn.log"
    path.write_text(json.dumps({"ts": 1.0, "uid": "C1", "id.orig_h": "10.0.0.1"}, indent=2) + "\n")
    with pytest.raises(InputError) as caught:
        list(read_input(resolve_inputs([path])[0]))
    assert "Suricata" not in str(caught.value)


def test_in_a_directory_too(tmp_path: Path) -> None:
    (tmp_path / "eve.json").write_text(json.dumps(_events(), indent=2))
    with pytest.raises(InputError, match=r"eve\.json: Suricata EVE events as one JSON array"):
        list(read_input(resolve_inputs([tmp_path])[0]))
