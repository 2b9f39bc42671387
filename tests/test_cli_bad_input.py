"""The bad-input table of `derisk analyze`: one line naming the input, a documented exit code,
no traceback, and the workspace exactly as it was."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from derisk.cli import main
from derisk.gen.model import Conversation, Exchange, TlsHello
from derisk.gen.packets import write_capture

T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


def _good_capture(path: Path) -> Path:
    convs = [
        Conversation(
            "tcp",
            "10.1.0.5",
            "8.8.8.10",
            T0 + dt.timedelta(seconds=i),
            40000 + i,
            443,
            (Exchange("c2s", 3000), Exchange("s2c", 800)),
            tls=TlsHello("www.google.com"),
        )
        for i in range(20)
    ]
    write_capture(convs, path)
    return path


def _snapshot(ws: Path) -> dict[str, tuple[int, int]]:
    """Flow and input counts as the store sees them (the database file may be re-laid by DuckDB)."""
    from derisk.store.workspace import Workspace

    with Workspace.open(ws, create=False, read_only=True) as w:
        return {
            "flows": (w.flow_count(), 0),
            "inputs": (len(w.query("SELECT * FROM inputs")), 0),
        }


def truncated_pcap(tmp: Path) -> Path:
    data = _good_capture(tmp / "full.pcap").read_bytes()
    out = tmp / "truncated.pcap"
    out.write_bytes(data[: len(data) // 2 + 7])
    return out


def not_a_capture(tmp: Path) -> Path:
    out = tmp / "notes.pcap"
    out.write_text("these are not packets\n")
    return out


def empty_file(tmp: Path) -> Path:
    out = tmp / "empty.pcap"
    out.write_bytes(b"")
    return out


def empty_dir(tmp: Path) -> Path:
    out = tmp / "nothing-here"
    out.mkdir()
    (out / "readme.txt").write_text("no captures\n")
    return out


def zeek_missing_fields(tmp: Path) -> Path:
    out = tmp / "conn.log"
    out.write_text("#separator \\x09\n#path\tconn\n1700000000.0\tC1\t10.0.0.1\t1\t8.8.8.8\t53\n")
    return out


def zeek_wrong_fields(tmp: Path) -> Path:
    out = tmp / "conn.log"
    out.write_text("#separator \\x09\n#fields\tts\tuid\tfoo\n#types\ttime\tstring\tstring\n1.0\tC1\tx\n")
    return out


def zeek_ragged(tmp: Path) -> Path:
    fields = [
        "ts",
        "uid",
        "id.orig_h",
        "id.orig_p",
        "id.resp_h",
        "id.resp_p",
        "proto",
        "service",
        "duration",
        "orig_bytes",
        "resp_bytes",
        "conn_state",
        "orig_pkts",
        "orig_ip_bytes",
        "resp_pkts",
        "resp_ip_bytes",
    ]
    types = [
        "time",
        "string",
        "addr",
        "port",
        "addr",
        "port",
        "enum",
        "string",
        "interval",
        "count",
        "count",
        "string",
        "count",
        "count",
        "count",
        "count",
    ]
    good = "1700000000.0\tC1\t10.0.0.1\t5000\t8.8.8.8\t53\tudp\tdns\t0.1\t40\t80\tSF\t1\t68\t1\t108"
    out = tmp / "conn.log"
    out.write_text(
        "#separator \\x09\n#fields\t"
        + "\t".join(fields)
        + "\n#types\t"
        + "\t".join(types)
        + "\n"
        + good
        + "\n"
        + "1700000001.0\tC2\t10.0.0.1\n"
        + "1700000002.0\tC3\t10.0.0.1\n"  # more lines bad than read: refused (fewer are left out)
    )
    return out


def gzip_corrupt(tmp: Path) -> Path:
    out = tmp / "conn.log.gz"
    out.write_bytes(gzip.compress(b"#separator \\x09\n#fields\tts\n")[:20])
    return out


def gzip_header_over_random_bytes(tmp: Path) -> Path:
    """A valid gzip header followed by bytes that are no deflate stream (zlib.error, not OSError)."""
    out = tmp / "capture.pcap.gz"
    out.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + random.Random(7).randbytes(5000))
    return out


def git_lfs_pointer(tmp: Path) -> Path:
    """What a clone without Git LFS holds in place of a capture (as in public capture collections)."""
    out = tmp / "plc.pcap"
    out.write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 1281\n"
    )
    return out


def missing_path(tmp: Path) -> Path:
    return tmp / "does-not-exist.pcap"


def unreadable(tmp: Path) -> Path:
    out = _good_capture(tmp / "secret.pcap")
    out.chmod(0)
    return out


def symlink_loop(tmp: Path) -> Path:
    out = tmp / "loop.pcap"
    out.symlink_to(tmp / "loop.pcap")
    return out


def a_fifo(tmp: Path) -> Path:
    out = tmp / "pipe.pcap"
    os.mkfifo(out)
    return out


CASES: list[tuple[str, Callable[[Path], Path], int, str]] = [
    ("truncated pcap with --strict", truncated_pcap, 3, "cut off"),
    ("not a capture", not_a_capture, 3, "not a capture"),
    ("empty file", empty_file, 3, "empty"),
    ("directory without inputs", empty_dir, 3, "no usable input"),
    ("zeek without #fields", zeek_missing_fields, 3, "#fields"),
    ("zeek with wrong #fields", zeek_wrong_fields, 3, "id.orig_h"),
    ("zeek with ragged lines", zeek_ragged, 3, "line 5"),
    ("corrupt gzip", gzip_corrupt, 3, ""),
    ("gzip header over random bytes", gzip_header_over_random_bytes, 3, "corrupt gzip"),
    ("git lfs pointer", git_lfs_pointer, 3, "git lfs pull"),
    ("missing path", missing_path, 3, "no such file"),
    ("unreadable path", unreadable, 3, "permission denied"),
    ("symlink loop", symlink_loop, 3, "loop.pcap"),
    ("named pipe", a_fifo, 3, "not a regular file"),
]


@pytest.mark.parametrize(("name", "make", "code", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_inputs_leave_the_workspace_as_it_was(
    tmp_path: Path,
    data_env: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    make: Callable[[Path], Path],
    code: int,
    words: str,
) -> None:
    if name == "unreadable path" and os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    ws = tmp_path / "ws"
    good = _good_capture(tmp_path / "good.pcap")
    assert main(["analyze", str(good), "-w", str(ws), "-q"]) == 0
    before = _snapshot(ws)
    capsys.readouterr()
    bad = make(tmp_path)
    strict = ["--strict"] if "--strict" in name else []  # without it a cut capture is read up to the cut
    got = main(["analyze", str(good), str(bad), "-w", str(ws), "-q", *strict])
    err = capsys.readouterr().err
    assert got == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert str(bad) in lines[0] or bad.name in lines[0]
    assert words.lower() in lines[0].lower()
    assert _snapshot(ws) == before


def test_bad_input_into_a_new_workspace_creates_nothing(tmp_path: Path, data_env: Path) -> None:
    ws = tmp_path / "fresh"
    assert main(["analyze", str(truncated_pcap(tmp_path)), "-w", str(ws), "-q", "--strict"]) == 3
    assert not ws.exists()


SITE_CASES = [
    ("systems: [{name: a, hosts: [10.0.0.300]}]", "not a valid IP address or CIDR"),
    ("systems: [{name: a, hosts: [10.0.0.1]}]\ncolour: red\n", "colour: unknown key"),
    ("systems: [{name: a, hosts: [10.0.0.0/8]}, {name: b, hosts: [10.1.0.0/16]}]", "overlaps"),
]


@pytest.mark.parametrize(("text", "words"), SITE_CASES)
def test_bad_site_file_is_rejected_before_any_ingest(
    tmp_path: Path, data_env: Path, capsys: pytest.CaptureFixture[str], text: str, words: str
) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(text)
    ws = tmp_path / "ws"
    got = main(["analyze", str(_good_capture(tmp_path / "g.pcap")), "--site", str(site), "-w", str(ws), "-q"])
    err = capsys.readouterr().err
    assert got == 4
    assert str(site) in err and words in err and len(err.strip().splitlines()) == 1
    assert not ws.exists()


def test_missing_ip_data_says_run_data_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DERISK_DATA_DIR", str(tmp_path / "no-data"))
    got = main(["analyze", str(_good_capture(tmp_path / "g.pcap")), "-w", str(tmp_path / "ws"), "-q"])
    err = capsys.readouterr().err
    assert got == 5
    assert "derisk data update" in err
    assert not (tmp_path / "ws").exists()


def test_workspace_path_that_is_a_file(
    tmp_path: Path, data_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "ws"
    blocker.write_text("i am a file")
    got = main(["analyze", str(_good_capture(tmp_path / "g.pcap")), "-w", str(blocker), "-q"])
    assert got in (2, 6)
    assert "Traceback" not in capsys.readouterr().err
    assert blocker.read_text() == "i am a file"


def test_reanalysing_an_empty_workspace_location_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    got = main(["analyze", "-w", str(tmp_path / "none"), "-q"])
    assert got == 6
    assert "no workspace here" in capsys.readouterr().err


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "--frobnicate"]) == 2
    assert "no such option" in capsys.readouterr().err.lower()
