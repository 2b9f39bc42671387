"""Zeek logs with damage read as far as they can be: a last line cut short (a log still being
written), lines of two Zeek runs written into one file at once, a few bad lines; refused with
``strict``, and refused when most lines are bad.

The logs are made from Zeek's own baselines (``tests/fixtures/zeek``, see ``tests/fixtures/README.md``);
each result is compared with the clean file's flows less the records of the lines left out.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from derisk.errors import InputError
from derisk.flows import INGEST_SCHEMA
from derisk.ingest.zeek import read_zeek
from test_ingest_zeek_variants import _conn_rows, write_json

FIXTURES = Path(__file__).parent / "fixtures" / "zeek"
POP3 = FIXTURES / "pop3" / "conn.log"  # 8 header lines, 11 records (lines 9 to 19), #close
SCOPE = FIXTURES / "scope_sep" / "conn.log"  # 34 records


def _read(path: Path, *, strict: bool = False, notes: dict[str, Any] | None = None) -> pa.Table:
    return pa.Table.from_batches(list(read_zeek(path, strict=strict, notes=notes)), schema=INGEST_SCHEMA)


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]  # the fixtures end with a line end


def _records(lines: list[bytes]) -> list[bytes]:
    return [line for line in lines if line and not line.startswith(b"#")]


def _without(table: pa.Table, uids: set[str]) -> pa.Table:
    keep = [i for i, uid in enumerate(table.column("source_ref").to_pylist()) if uid not in uids]
    return table.take(keep)


def _uid(line: bytes) -> str:
    return line.split(b"\t")[1].decode()


def _write(tmp: Path, lines: list[bytes], end: bytes = b"\n", name: str = "conn.log") -> Path:
    path = tmp / name
    path.write_bytes(b"\n".join(lines) + end)
    return path


@pytest.mark.parametrize("all_fields", [False, True], ids=["mid-value", "all-fields"])
def test_last_line_cut_short_is_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, all_fields: bool
) -> None:
    """A log still being written: its last record without a line end, cut inside a value or with
    every field there (its last value may still be cut: it is left out all the same)."""
    lines = _lines(POP3)[:-1]  # no #close yet: Zeek is still writing
    last = lines[-1]
    cut = last if all_fields else last[: len(last) // 2]
    if all_fields:
        assert len(last.split(b"\t")) == 22
    data = b"\n".join(lines[:-1]) + b"\n" + cut
    path = tmp_path / "conn.log"
    path.write_bytes(data)
    notes: dict[str, Any] = {}
    with caplog.at_level(logging.WARNING):
        got = _read(path, notes=notes)
    assert got.equals(_without(_read(POP3), {_uid(last)}))
    assert got.num_rows == 10
    byte = len(data) - len(cut)
    warning = f"last line (line 19, byte {byte:,}) cut short, as in a log still being written; read up to it"
    assert f"{path}: {warning}" in caplog.text
    assert notes["last_lines_cut"] == 1 and notes["cut_at_byte"] == byte and notes["lines_left_out"] == 0
    assert notes["warnings"] == [f"{path}: {warning}"]
    with pytest.raises(InputError) as caught:
        _read(path, strict=True)
    assert str(caught.value) == (
        f"{path}: last line (line 19, byte {byte:,}) cut short, as in a log still being written; "
        "refused with --strict"
    )


def test_the_brief_example_head_c_minus_30(tmp_path: Path) -> None:
    """``head -c -30 conn.log``: the file ends 30 bytes before its end, inside the #close line's
    predecessor or the #close line itself; what remains readable is read."""
    data = POP3.read_bytes()[:-30]
    (tmp_path / "conn.log").write_bytes(data)
    got = _read(tmp_path)
    whole = _records(data.split(b"\n")[:-1])
    assert got.column("source_ref").to_pylist() == [_uid(line) for line in whole]


def test_json_last_line_cut_short(tmp_path: Path) -> None:
    whole, cut = tmp_path / "whole.log", tmp_path / "cut.log"
    write_json(whole, _conn_rows())
    data = whole.read_bytes()
    lines = data.split(b"\n")[:-1]
    cut.write_bytes(data[: len(data) - len(lines[-1]) // 2 - 1])
    expected = _read(whole)
    assert _read(cut).equals(expected.slice(0, expected.num_rows - 1))
    with pytest.raises(InputError, match="cut short, as in a log still being written; refused with --strict"):
        _read(cut, strict=True)


def test_two_zeek_runs_written_into_one_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """What two Zeek runs writing the same conn.log leave (as in two public folders swept): one run's
    line runs into the other's, its #close sits mid-file, the other run's header follows."""
    lines = _lines(POP3)
    header, records, close = lines[:8], lines[8:-1], lines[-1]
    assert len(records) == 11 and close.startswith(b"#close")
    second = records[6][:40]  # the other run's record, cut where the first run's write went on
    body = [
        *header,
        *records[:4],
        records[4] + second,  # line 13: the two run together
        *records[5:7],
        close,  # line 16: the first run closes
        *header,  # lines 17-24: the second run's header, the same fields (just a header)
        *records[7:],
        close,
    ]
    path = _write(tmp_path, body)
    notes: dict[str, Any] = {}
    with caplog.at_level(logging.WARNING):
        got = _read(path, notes=notes)
    assert got.equals(_without(_read(POP3), {_uid(records[4])}))
    assert notes["lines_left_out"] == 1
    count = len((records[4] + second).split(b"\t"))
    assert (
        f"1 line that cannot be read left out (the first: line 13 has {count} fields, expected 22)"
        in caplog.text
    )
    with pytest.raises(InputError, match=rf"line 13 has {count} fields, expected 22$"):
        _read(path, strict=True)


def test_a_second_header_of_other_fields_is_another_layout(tmp_path: Path) -> None:
    """A #fields line naming other fields starts records of another layout (here a Zeek writing two
    fields fewer): they cannot be read as this log's records and are left out, counted."""
    lines = _lines(POP3)
    header, records = lines[:8], lines[8:-1]

    def shorter(line: bytes) -> bytes:
        return b"\t".join(line.split(b"\t")[:-2])

    other = [shorter(line) if line.startswith((b"#fields", b"#types")) else line for line in header]
    theirs = [shorter(line) for line in _records(_lines(SCOPE))[:3]]
    body = [*header, *records, *other, *theirs]
    notes: dict[str, Any] = {}
    got = _read(_write(tmp_path, body), notes=notes)
    assert got.equals(_read(POP3))
    assert notes["lines_left_out"] == 3


def test_a_few_bad_lines_are_left_out_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = _lines(SCOPE)
    first = next(i for i, line in enumerate(lines) if not line.startswith(b"#"))
    bad = {first + 3, first + 10, first + 11, first + 20}
    changed = list(lines)
    changed[first + 3] = b"\t".join(lines[first + 3].split(b"\t")[:-1])  # a field short
    fields = lines[first + 10].split(b"\t")
    fields[0] = b"yesterday"  # ts not a time
    changed[first + 10] = b"\t".join(fields)
    fields = lines[first + 11].split(b"\t")
    fields[1] = b"-"  # uid unset: read by DuckDB, unusable
    changed[first + 11] = b"\t".join(fields)
    changed[first + 20] = lines[first + 20] + b"\tx"  # a field too many
    path = _write(tmp_path, changed)
    notes: dict[str, Any] = {}
    with caplog.at_level(logging.WARNING):
        got = _read(path, notes=notes)
    assert got.equals(_without(_read(SCOPE), {_uid(lines[i]) for i in bad}))
    assert got.num_rows == 30
    assert notes["lines_left_out"] == 4
    fields_count = len(lines[first].split(b"\t"))
    said = (
        f"{path}: 4 lines that cannot be read left out (the first: line {first + 4} has "
        f"{fields_count - 1} fields, expected {fields_count})"
    )
    assert said in caplog.text and notes["warnings"] == [said]
    with pytest.raises(InputError, match=rf"line {first + 4} has {fields_count - 1} fields"):
        _read(path, strict=True)


def test_an_unusable_record_alone(tmp_path: Path) -> None:
    """A record DuckDB reads but derisk cannot use (uid unset) is left out like a ragged line."""
    lines = _lines(POP3)
    fields = lines[10].split(b"\t")
    fields[1] = b"-"
    changed = [*lines[:10], b"\t".join(fields), *lines[11:]]
    notes: dict[str, Any] = {}
    got = _read(_write(tmp_path, changed), notes=notes)
    assert got.equals(_without(_read(POP3), {_uid(lines[10])}))
    assert notes["lines_left_out"] == 1
    with pytest.raises(InputError, match="line 11: uid is unset"):
        _read(tmp_path / "conn.log", strict=True)


@pytest.mark.parametrize("bad", [6, 11])
def test_mostly_bad_lines_are_refused(tmp_path: Path, bad: int) -> None:
    """More lines bad than read (6 of 11: just over half; all 11): not a log to read around."""
    lines = _lines(POP3)
    records = lines[8:-1]
    damaged = [b"\t".join(line.split(b"\t")[:5]) if i < bad else line for i, line in enumerate(records)]
    path = _write(tmp_path, [*lines[:8], *damaged, lines[-1]])
    with pytest.raises(InputError) as caught:
        _read(path)
    assert str(caught.value) == (
        f"{path}: {bad} of its 11 records cannot be read, the first: line 9 has 5 fields, expected 22; "
        "not read as a Zeek log"
    )


def test_five_bad_lines_of_eleven_are_read_around(tmp_path: Path) -> None:
    lines = _lines(POP3)
    records = lines[8:-1]
    damaged = [b"\t".join(line.split(b"\t")[:5]) if i < 5 else line for i, line in enumerate(records)]
    got = _read(_write(tmp_path, [*lines[:8], *damaged, lines[-1]]))
    assert got.equals(_without(_read(POP3), {_uid(line) for line in records[:5]}))


def test_a_companion_with_runs_together_is_read_around(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """ssl.log as two runs left it: the bad line is left out, the other server names are joined."""
    lines = _lines(POP3)
    _write(tmp_path, lines)
    uids = [_uid(line) for line in lines[8:11]]
    head = "#separator \\x09\n#path\tssl\n#fields\tts\tuid\tserver_name\n#types\ttime\tstring\tstring\n"
    (tmp_path / "ssl.log").write_text(
        head
        + f"1358380000.0\t{uids[0]}\ta.example\n"
        + f"1358380001.0\t{uids[1]}\tb.example1358380002.0\tCx\n"  # line 6: run together
        + f"1358380002.0\t{uids[2]}\tc.example\n"
    )
    with caplog.at_level(logging.WARNING):
        got = _read(tmp_path)
    names = dict(
        zip(got.column("source_ref").to_pylist(), got.column("server_name").to_pylist(), strict=True)
    )
    assert [names[uid] for uid in uids] == ["a.example", None, "c.example"]
    assert (
        "ssl.log: 1 line that cannot be read left out (the first: line 6 has 4 fields, expected 3)"
        in caplog.text
    )
    with pytest.raises(InputError, match=r"ssl\.log: line 6 has 4 fields, expected 3"):
        _read(tmp_path, strict=True)


def test_a_companion_mostly_bad_is_left_out_whole(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """As in a public folder of two runs: http.log's one line is two records run together. The
    conn log's flows are read, without that log's names; with ``strict`` the input is refused."""
    lines = _lines(POP3)
    _write(tmp_path, lines)
    uid = _uid(lines[8])
    (tmp_path / "http.log").write_text(
        "#separator \\x09\n#path\thttp\n#fields\tts\tuid\thost\n#types\ttime\tstring\tstring\n"
        f"1358380000.0\t{uid}\ta.example1358380002.0\t{uid}\tb.example\n"
    )
    notes: dict[str, Any] = {}
    with caplog.at_level(logging.WARNING):
        got = _read(tmp_path, notes=notes)
    assert got.drop(["server_name", "server_name_source"]).equals(
        _read(POP3).drop(["server_name", "server_name_source"])
    )
    assert got.column("server_name").null_count == got.num_rows
    said = "1 of its 1 records cannot be read, the first: line 5 has 5 fields, expected 3; the whole log left out"
    assert said in caplog.text and notes["lines_left_out"] == 1
    with pytest.raises(InputError, match=r"http\.log: line 5 has 5 fields, expected 3"):
        _read(tmp_path, strict=True)


def test_clean_logs_say_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notes: dict[str, Any] = {}
    with caplog.at_level(logging.WARNING):
        got = _read(SCOPE, notes=notes)
    assert got.num_rows == 34 and caplog.text == ""
    assert notes == {
        "file_format": "zeek",
        "lines_left_out": 0,
        "last_lines_cut": 0,
        "cut_at_byte": None,
        "warnings": [],
    }


def test_gzip_log_cut_short_is_read_up_to_its_last_whole_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A gzip conn log cut short (rotated logs copied while compressed): its content up to the last
    whole line before the cut, exactly the clean log's first records; refused with ``strict``."""
    import gzip
    import zlib

    from derisk.gen.zeek_bench import write_bench_conn_log

    full = tmp_path / "full" / "conn.log"
    full.parent.mkdir()
    write_bench_conn_log(full, 150_000, seed=5)  # past the first batches: the read goes on after them
    packed = gzip.compress(full.read_bytes(), mtime=0)
    cut = tmp_path / "cut" / "conn.log.gz"
    cut.parent.mkdir()
    cut.write_bytes(packed[: len(packed) * 2 // 3])
    content = zlib.decompressobj(wbits=31).decompress(cut.read_bytes())  # what a reader can get
    whole = _records(content[: content.rfind(b"\n") + 1].split(b"\n"))
    notes: dict[str, Any] = {}
    with caplog.at_level(logging.WARNING):
        got = _read(cut, notes=notes)
    expected = _read(full)
    assert 70_000 < got.num_rows == len(whole) < expected.num_rows
    assert got.equals(expected.slice(0, got.num_rows))
    said = (
        f"{cut}: gzip data is truncated (the file ends at byte {cut.stat().st_size:,}), as in a log "
        "still being written; read up to the last whole line before the cut"
    )
    assert said in caplog.text and notes["warnings"] == [said] and notes["last_lines_cut"] == 1
    with pytest.raises(InputError, match=r"gzip data is truncated$"):
        _read(cut, strict=True)


def test_nothing_before_the_cut_is_refused(tmp_path: Path) -> None:
    """A log whose only record is cut short gives no flow: refused, not an empty success."""
    lines = _lines(POP3)
    path = tmp_path / "conn.log"
    path.write_bytes(b"\n".join(lines[:8]) + b"\n" + lines[8][:30])
    with pytest.raises(InputError, match="the last line is cut short, before the first record"):
        _read(path)


def test_analyze_reads_a_log_still_being_written(
    tmp_path: Path, data_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The brief's example, ``head -c -30 conn.log``, through the command line: exit 0, the flows
    before the cut stored, the warning on standard error."""
    from derisk.cli import main
    from derisk.store.workspace import Workspace

    folder = tmp_path / "logs"
    folder.mkdir()
    data = POP3.read_bytes()[:-30]
    (folder / "conn.log").write_bytes(data)
    ws = tmp_path / "ws"
    with caplog.at_level(logging.WARNING):
        assert main(["analyze", str(folder), "-w", str(ws), "-q"]) == 0
    said = caplog.text
    assert (
        "conn.log: last line (line 19, byte" in said and "cut short, as in a log still being written" in said
    )
    with Workspace.open(ws, create=False, read_only=True) as w:
        assert w.flow_count() == len(_records(data.split(b"\n")[:-1]))


def test_analyze_notes_the_cut_and_strict_refuses_it(tmp_path: Path, data_env: Path) -> None:
    """The reader's note reaches the analysis document; ``derisk analyze --strict`` refuses the log
    (exit 3) and leaves no flow in the workspace."""
    from derisk.cli import main
    from derisk.store.workspace import Workspace

    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "conn.log").write_bytes(POP3.read_bytes()[:-30])
    out = tmp_path / "doc.json"
    assert main(["analyze", str(folder), "-w", str(tmp_path / "ws"), "-q", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    notes = list((doc["run"]["input_notes"] or {}).values())
    assert any("cut short, as in a log still being written" in w for n in notes for w in n["warnings"])
    strict = tmp_path / "strict"
    assert main(["analyze", str(folder), "-w", str(strict), "-q", "--strict"]) == 3
    if strict.exists():
        with Workspace.open(strict, create=False, read_only=True) as w:
            assert w.flow_count() == 0
