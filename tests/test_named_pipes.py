"""A named pipe given where a file is expected is refused at once, not read for ever (no writer comes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CAPTURE = Path(__file__).parent / "fixtures" / "pcap" / "golden.pcap"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["entity", "import", "{pipe}", "-w", "{ws}"], 3),
        (["screen", "{pipe}"], 3),
        (["analyze", str(CAPTURE), "--site", "{pipe}", "-w", "{ws}", "-q"], 3),
        (["analyze", "{pipe}", "-w", "{ws}", "-q"], 3),
    ],
)
def test_a_named_pipe_is_refused_in_one_line(
    tmp_path: Path, args: list[str], code: int, data_env: Path
) -> None:
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    argv = [a.format(pipe=pipe, ws=tmp_path / "ws") for a in args]
    done = subprocess.run(
        [sys.executable, "-m", "derisk.cli", *argv], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == code, done.stderr
    assert "not a regular file" in done.stderr and done.stderr.count("\n") == 1
