"""The command line starts without loading the engines: ``--help`` and ``--version`` must feel instant.

Speed itself is measured by ``scripts/bench.py`` (a ratio, not a timed test); this test checks the
cause that matters: that no heavy module is imported before a command actually runs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "duckdb",
    "pyarrow",
    "numpy",
    "pandas",
    "scapy",
    "nfstream",
    "weasyprint",
    "followthemoney",
    "tldextract",
    "jinja2",
    "babel",
    "rapidfuzz",
    "starlette",
    "uvicorn",
    "rich",  # the terminal renderer: imported when something is shown
)

PROBE = f"""
import contextlib, io, json, sys
from derisk.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({{"code": code, "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""


def _loaded(*args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True, timeout=60
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("args", [("--help",), ("--version",)])
def test_top_level_loads_no_engine(args: tuple[str, ...]) -> None:
    result = _loaded(*args)
    assert result == {"code": 0, "heavy": []}


def test_every_command_help_loads_no_engine() -> None:
    from derisk.cli import cli

    heavy: dict[str, object] = {}
    for name, command in cli.commands.items():
        subcommands = getattr(command, "commands", None) or {None: None}
        for sub in subcommands:
            args = [name, *([sub] if sub else []), "--help"]
            result = _loaded(*args)
            assert result["code"] == 0, args
            if result["heavy"]:
                heavy[" ".join(args)] = result["heavy"]
    assert heavy == {}
