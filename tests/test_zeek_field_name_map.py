"""Zeek logs written with ``Log::default_field_name_map`` (``src``, ``dst`` for ``id.orig_h``, ``id.resp_h``).

The fixture is Zeek's own baseline of that option (``tests/fixtures/README.md``); the same
connections of the same trace are in the ``scope_sep`` fixture, written with ``id_orig_h``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from derisk.errors import InputError
from derisk.flows import INGEST_SCHEMA
from derisk.ingest.zeek import read_zeek

FIXTURES = Path(__file__).parent / "fixtures" / "zeek"
MAPPED = FIXTURES / "field_name_map" / "conn.log"
SCOPED = FIXTURES / "scope_sep" / "conn.log"
COLUMNS = ("src_ip", "src_port", "dst_ip", "dst_port", "protocol", "bytes_out", "bytes_in", "packets_out")


def _read(path: Path) -> pa.Table:
    return pa.Table.from_batches(list(read_zeek(path)), schema=INGEST_SCHEMA)


def _by_uid(table: pa.Table) -> dict[str, tuple[object, ...]]:
    rows = zip(*(table[c].to_pylist() for c in ("source_ref", *COLUMNS)), strict=True)
    return {row[0]: row[1:] for row in rows}


def test_zeeks_field_name_map_reads_like_the_default_names() -> None:
    mapped = _by_uid(_read(MAPPED))
    scoped = _by_uid(_read(SCOPED))
    assert len(mapped) == 6
    assert mapped == {uid: scoped[uid] for uid in mapped}
    assert mapped["CFSwNi4CNGxcuffo49"][:4] == ("173.192.163.128", 80, "141.142.220.235", 6705)


@pytest.mark.parametrize("json_lines", [False, True])
def test_src_ip_and_dst_ip_spelling(tmp_path: Path, json_lines: bool) -> None:
    """The other map of Zeek's tests (``src_ip``, ``dst_ip``), in TSV and in JSON lines."""
    lines = MAPPED.read_text().splitlines()
    header = next(line for line in lines if line.startswith("#fields")).split("\t")[1:]
    header = [{"src": "src_ip", "dst": "dst_ip"}.get(name, name) for name in header]
    path = tmp_path / "conn.log"
    if json_lines:
        records = [
            dict(zip(header, line.split("\t"), strict=True)) for line in lines if not line.startswith("#")
        ]
        numbers = ("ts", "src_port", "dst_port", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes")
        path.write_text(
            "".join(
                json.dumps({k: float(v) if k in numbers else v for k, v in r.items() if v != "-"}) + "\n"
                for r in records
            )
        )
    else:
        path.write_text(
            "\n".join(
                "#fields\t" + "\t".join(header) if line.startswith("#fields") else line for line in lines
            )
            + "\n"
        )
    assert _by_uid(_read(path)) == _by_uid(_read(MAPPED))


def test_a_log_with_src_but_no_dst_is_still_refused(tmp_path: Path) -> None:
    text = MAPPED.read_text().replace("\tdst\t", "\tdest\t", 1)
    path = tmp_path / "conn.log"
    path.write_text(text)
    with pytest.raises(InputError, match=r"lacks the columns id\.orig_h"):
        _read(path)
