"""Optional parts: the demo's packet writer (scapy) is the ``demo`` extra; without it, one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BLOCK_SCAPY = """
import importlib.abc, sys
class NoScapy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "scapy" or name.startswith("scapy."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, NoScapy())
from derisk.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_demo_without_scapy_says_which_extra_to_install(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_SCAPY, "demo", "--out", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 5
    assert done.stderr == (
        "derisk: error: the demo writes its capture with scapy, which is not installed: "
        "pip install 'derisk[demo]'\n"
    )


def test_analysis_needs_no_scapy(tmp_path: Path, ipdata_dir: Path) -> None:
    capture = Path(__file__).parent / "fixtures" / "pcap" / "golden.pcap"
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_SCAPY, "analyze", str(capture), "-w", str(tmp_path / "ws"),
         "--data-dir", str(ipdata_dir), "-q"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
