"""The command line starts without loading the engines: ``--help`` and ``--version`` must feel instant.

Speed itself is measured by ``scripts/bench.py`` (a ratio, not a timed test); this test checks the
cause that matters: that no heavy module is imported before a command actually runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    import click

    from derisk.cli import cli

    ctx = click.Context(cli)
    heavy: dict[str, object] = {}
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        subcommands = getattr(command, "commands", None) or {None: None}
        for sub in subcommands:
            args = [name, *([sub] if sub else []), "--help"]
            result = _loaded(*args)
            assert result["code"] == 0, args
            if result["heavy"]:
                heavy[" ".join(args)] = result["heavy"]
    assert heavy == {}


def test_command_table_matches_what_the_modules_register() -> None:
    """derisk.cli imports a command's module when the command is looked up: its table of which
    module registers which command must say what each module's ``register`` adds."""
    import importlib

    import click

    from derisk.cli import COMMANDS

    for module, names in COMMANDS.items():
        group = click.Group()
        importlib.import_module(module).register(group)
        assert tuple(group.commands) == names, module


def test_a_command_imports_only_its_own_module() -> None:
    code = """
import sys
from derisk.cli import cli, COMMAND_MODULES
import click
cli.get_command(click.Context(cli), "schema")
print(sorted(m for m in COMMAND_MODULES if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "['derisk.cli.schema']"


ANALYZE_PROBE = """
import contextlib, io, json, sys
from derisk.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(sys.argv[1:])
doc = json.loads(out.getvalue())
print(json.dumps({"code": code, "pandas": "pandas" in sys.modules, "flows": doc["totals"]["flows"]}))
"""


def test_analysis_of_a_capture_imports_no_pandas(tmp_path: Path) -> None:
    """pyarrow and NFStream would import pandas (0.25-0.45 CPU s) for nothing an analysis uses."""
    golden = Path(__file__).parent / "fixtures" / "pcap" / "golden.pcap"
    args = [golden, "--workspace", tmp_path / "ws", "--json", "-", "-q"]
    out = subprocess.run(
        [sys.executable, "-c", ANALYZE_PROBE, "analyze", *map(str, args)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["code"] == 0
    assert result["pandas"] is False
    assert result["flows"] > 0


def test_pandas_held_back_only_inside_the_block() -> None:
    code = """
import sys
from derisk.cli.startup import pandas_deferred
with pandas_deferred():
    try:
        import pandas
    except ModuleNotFoundError:
        held = True
    else:
        held = False
import pandas
print(held, pandas.DataFrame({"a": [1]}).shape)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["True", "(1,", "1)"]


def test_nfstream_gets_pandas_when_it_asks() -> None:
    """NFStream is imported with pandas deferred; its to_pandas path still finds the real pandas."""
    code = """
import sys
from derisk.ingest.nfstream_engine import load_nfstream
nfstream = load_nfstream()
before = "pandas" in sys.modules
frame = sys.modules["nfstream.streamer"].pd.DataFrame({"a": [1]})
print(before, "pandas" in sys.modules, type(frame).__module__.split(".")[0])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["False", "True", "pandas"]
