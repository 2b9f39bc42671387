"""The bad-input table for every Zeek variant DuckDB reads: TSV (dotted and scope_sep names) and JSON
lines (epoch, millisecond and ISO times), each plain and gzip.

Each bad file gives one line naming the file and the problem (a refusal), or is read with its text
bounded; through the command line a refusal exits 3 and leaves the workspace as it was.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from derisk.cli import main
from derisk.errors import InputError
from derisk.ingest.zeek import read_zeek
from derisk.safetext import MAX_FIELD_CHARS, TRUNCATION_MARK
from test_ingest_zeek_variants import _conn_rows, read_all, write_json, write_tsv

VARIANTS = ["tsv", "tsv-scope", "json", "json-millis", "json-iso"]
ROWS = len(_conn_rows())


def _content(variant: str, tmp: Path) -> bytes:
    source = tmp / f"source-{variant}.log"
    if variant.startswith("tsv"):
        write_tsv(source, _conn_rows(), scope_sep="_" if variant == "tsv-scope" else ".")
    else:
        write_json(
            source, _conn_rows(), ts={"json": "epoch", "json-millis": "millis", "json-iso": "iso"}[variant]
        )
    return source.read_bytes()


def _mutated(data: bytes, kind: str, is_json: bool) -> tuple[bytes, int]:
    """The content with its fourth record changed; and that record's line number."""
    lines = data.split(b"\n")
    index = next(i for i, line in enumerate(lines) if line and not line.startswith(b"#")) + 3
    line = lines[index]
    if kind == "nul":
        line = line.replace(b"C0000", b"C\x00000", 1)
    elif kind == "not utf-8":
        line = line.replace(b"C0000", b"C\xff000", 1)
    elif kind == "wrong type":
        line = (
            line.replace(b'"orig_pkts": 1', b'"orig_pkts": "ten"')
            if is_json
            else line.replace(b"\t1\t60\t", b"\tten\t60\t")
        )
    elif kind == "10 MB field":
        big = b"x" * 10_000_000
        line = (
            line.replace(b'"history": "S"', b'"service": "' + big + b'", "history": "S"')
            if is_json
            else line.replace(b"\t-\t1.5", b"\t" + big + b"\t1.5")
        )
    assert line != lines[index], kind
    lines[index] = line
    return b"\n".join(lines), index + 1


def _write(tmp: Path, data: bytes, compress: bool) -> Path:
    path = tmp / ("conn.log.gz" if compress else "conn.log")
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def _refused(path: Path, *, strict: bool = False) -> str:
    with pytest.raises(InputError) as caught:
        list(read_zeek(path, strict=strict))
    text = caught.value.one_line()
    assert text.startswith(f"{path}: "), text
    assert "\n" not in text
    return text[len(str(path)) + 2 :]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_bad_records_are_named_by_line(tmp_path: Path, variant: str, compress: bool) -> None:
    """With ``strict`` a bad line refuses the log, named; without, TSV logs are read around it
    (``tests/test_ingest_zeek_damaged.py``), JSON logs refused as here."""
    is_json = variant.startswith("json")
    good = _content(variant, tmp_path)
    for kind, expected in [
        ("not utf-8", "line {n} is not UTF-8 text"),
        ("wrong type", "line {n}: orig_pkts is not an integer: 'ten'"),
        ("nul", "line {n} is not JSON" if is_json else None),  # JSON forbids a raw NUL in a string
    ]:
        data, number = _mutated(good, kind, is_json)
        path = _write(tmp_path, data, compress)
        if expected is None:  # TSV: a NUL is a byte of the value like any other (outputs escape it)
            uids = read_all(path).column("source_ref").to_pylist()
            assert len(uids) == ROWS and uids[3].startswith("C\x00000"), kind
            continue
        assert _refused(path, strict=True) == expected.format(n=number), kind
        if is_json:
            assert _refused(path) == expected.format(n=number), kind
        else:
            assert read_all(path).num_rows == ROWS - 1, kind  # the bad line left out


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_a_10_mb_field_is_read_and_bounded(tmp_path: Path, variant: str, compress: bool) -> None:
    data, _ = _mutated(_content(variant, tmp_path), "10 MB field", variant.startswith("json"))
    table = read_all(_write(tmp_path, data, compress))
    assert table.num_rows == ROWS
    service = table.column("application").to_pylist()[3]
    assert len(service) == MAX_FIELD_CHARS and service.endswith(TRUNCATION_MARK)


@pytest.mark.parametrize("variant", VARIANTS)
def test_whole_file_damage(tmp_path: Path, variant: str) -> None:
    good = _content(variant, tmp_path)
    noise = random.Random(7).randbytes(4096)
    packed = gzip.compress(good, mtime=0)
    cases = [
        (b"", "conn.log", "empty file"),
        (gzip.compress(b"", mtime=0), "conn.log.gz", "empty file"),
        (noise.replace(b"{", b"(").replace(b"#", b"+"), "conn.log", "not a Zeek log"),
        (packed[:10] + noise, "conn.log.gz", "gzip data is corrupt"),
        (packed[: len(packed) // 2], "conn.log.gz", "gzip data is truncated"),
    ]
    for content, name, expected in cases:
        path = tmp_path / name
        path.write_bytes(content)
        assert _refused(path).startswith(expected), (name, expected)
        path.unlink()


def _mostly_wrong(data: bytes) -> bytes:
    """Every record with a count that is not a number (a TSV log read around its bad lines is
    refused when more are bad than read)."""
    return data.replace(b"\t1\t60\t", b"\tten\t60\t")


@pytest.mark.parametrize("variant", ["tsv", "json-iso"])
def test_refusal_leaves_the_workspace_as_it_was(
    tmp_path: Path, data_env: Path, capsys: pytest.CaptureFixture[str], variant: str
) -> None:
    from derisk.store.workspace import Workspace

    good_dir, bad_dir = tmp_path / "good", tmp_path / "bad"
    good_dir.mkdir()
    bad_dir.mkdir()
    good = _content(variant, tmp_path)
    _write(good_dir, good, compress=False)
    ws = tmp_path / "ws"
    assert main(["analyze", str(good_dir / "conn.log"), "-w", str(ws), "-q"]) == 0

    def snapshot() -> tuple[int, int]:
        with Workspace.open(ws, create=False, read_only=True) as w:
            return w.flow_count(), len(w.query("SELECT * FROM inputs"))

    before = snapshot()
    capsys.readouterr()
    wrong = bad_dir / "wrong.log"  # JSON: one bad line refuses it; TSV: its lines mostly bad do
    wrong.write_bytes(_mostly_wrong(good) if variant == "tsv" else _mutated(good, "wrong type", True)[0])
    packed = gzip.compress(good.replace(b"10.0.0.5", b"10.0.0.6"), mtime=0)
    truncated = bad_dir / "cut.log.gz"
    truncated.write_bytes(packed[: len(packed) // 2])
    for bad in (wrong, truncated):
        got = main(["analyze", str(bad), "-w", str(ws), "-q"])
        err = capsys.readouterr().err
        assert got == 3, err
        assert len(err.strip().splitlines()) == 1 and str(bad) in err and "Traceback" not in err
        assert snapshot() == before
