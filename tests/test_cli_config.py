"""derisk.toml and DERISK_* variables: where an option's value comes from, and refusals of bad files.

Each case runs the real command line in a subprocess (its own environment and working directory), so
the test sees what a user sees: the option value that reached the command, or one line and exit 4.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

#: `derisk inputs` on a folder that holds no workspace names the workspace it looked for: a cheap way
#: to see which --workspace value won.
PROBE = ["inputs"]


def run(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DERISK_") and k != "XDG_CONFIG_HOME"}
    base["XDG_CONFIG_HOME"] = str(cwd / "userconf")
    base.update(env)
    return subprocess.run(
        [sys.executable, "-m", "derisk", *(args or PROBE)],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def workspace_used(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 6, proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("derisk: error: ") and line.count("\n") == 0, line
    return line.removeprefix("derisk: error: ").split(":", 1)[0]


def user_file(tmp_path: Path, text: str) -> None:
    folder = tmp_path / "userconf" / "derisk"
    folder.mkdir(parents=True)
    (folder / "derisk.toml").write_text(text, encoding="utf-8")


def test_built_in_default_without_files(tmp_path: Path) -> None:
    assert workspace_used(run(tmp_path, {})) == "derisk-workspace"


def test_precedence_user_file_site_file_env_command_line(tmp_path: Path) -> None:
    user_file(tmp_path, 'workspace = "from-user"\n')
    assert workspace_used(run(tmp_path, {})) == str(tmp_path / "userconf" / "derisk" / "from-user")
    (tmp_path / "derisk.toml").write_text('workspace = "from-site"\n', encoding="utf-8")
    assert workspace_used(run(tmp_path, {})) == str(tmp_path / "from-site")
    assert workspace_used(run(tmp_path, {"DERISK_WORKSPACE": "from-env"})) == "from-env"
    per_command = {"DERISK_WORKSPACE": "from-env", "DERISK_INPUTS_WORKSPACE": "from-cmd-env"}
    assert workspace_used(run(tmp_path, per_command)) == "from-cmd-env"
    assert workspace_used(run(tmp_path, per_command, "inputs", "-w", "from-cli")) == "from-cli"


def test_command_table_beats_top_level_key(tmp_path: Path) -> None:
    (tmp_path / "derisk.toml").write_text(
        'workspace = "everyone"\n[inputs]\nworkspace = "inputs-only"\n', encoding="utf-8"
    )
    assert workspace_used(run(tmp_path, {})) == str(tmp_path / "inputs-only")


def test_nested_command_table(tmp_path: Path) -> None:
    (tmp_path / "derisk.toml").write_text('[evidence.list]\nworkspace = "ents"\n', encoding="utf-8")
    proc = run(tmp_path, {}, "evidence", "list")
    assert workspace_used(proc) == str(tmp_path / "ents")


def test_derisk_config_names_one_file(tmp_path: Path) -> None:
    (tmp_path / "derisk.toml").write_text('workspace = "ignored"\n', encoding="utf-8")
    other = tmp_path / "elsewhere.toml"
    other.write_text('workspace = "named"\n', encoding="utf-8")
    assert workspace_used(run(tmp_path, {"DERISK_CONFIG": str(other)})) == str(tmp_path / "named")
    assert workspace_used(run(tmp_path, {"DERISK_CONFIG": ""})) == "derisk-workspace"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus = 1\n", "bogus: no command has an option of this name"),
        ("[nosuchcommand]\nx = 1\n", "[nosuchcommand]: no such command"),
        ("[analyze]\nnosuch = 1\n", "[analyze] nosuch: no such option of 'derisk analyze'"),
        ("[analyze]\nsite = 3\n", "[analyze] site: expected a path (a string), got int"),
        ("lang = 'xx'\n", "lang: Invalid value for '--lang'"),
        ("[analyze\n", "not valid TOML"),
        ("[entity]\nworkspace = 'x'\n", "[entity] workspace: expected a table of options for a command"),
        ("workspace = ['a', 'b']\n", "workspace: expected a single value, got a list"),
    ],
)
def test_bad_file_refused_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "derisk.toml").write_text(text, encoding="utf-8")
    proc = run(tmp_path, {})
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert message in proc.stderr and str(tmp_path / "derisk.toml") in proc.stderr


def test_non_utf8_and_huge_files_refused(tmp_path: Path) -> None:
    (tmp_path / "derisk.toml").write_bytes(b'workspace = "\xff"\n')
    proc = run(tmp_path, {})
    assert proc.returncode == 4 and "not UTF-8" in proc.stderr
    (tmp_path / "derisk.toml").write_bytes(b"# " + b"x" * 1_100_000 + b"\n")
    proc = run(tmp_path, {})
    assert proc.returncode == 4 and "not a configuration file" in proc.stderr


def test_deeply_nested_file_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "derisk.toml").write_text("[analyze]\na=" + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    proc = run(tmp_path, {})
    assert proc.returncode == 4 and "nested too deeply" in proc.stderr and proc.stderr.count("\n") == 1


def test_missing_file_named_by_derisk_config(tmp_path: Path) -> None:
    proc = run(tmp_path, {"DERISK_CONFIG": str(tmp_path / "absent.toml")})
    assert proc.returncode == 4 and "no such configuration file" in proc.stderr


def test_bad_shared_environment_variable(tmp_path: Path) -> None:
    proc = run(tmp_path, {"DERISK_LANG": "xx"})
    assert proc.returncode == 4 and proc.stderr.startswith("derisk: error: $DERISK_LANG: lang:")


def test_flag_from_file_reaches_command(tmp_path: Path) -> None:
    """A boolean from the file is a real default: `--help` shows it as the command's default."""
    (tmp_path / "derisk.toml").write_text("[analyze]\nquiet = true\nlang = 'nl'\n", encoding="utf-8")
    proc = run(tmp_path, {}, "analyze", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "[default: nl]" in " ".join(proc.stdout.split())
