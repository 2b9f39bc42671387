"""Shared fixtures: the IP data fixture installed once per session, isolated workspaces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
IPDATA_FIXTURE = FIXTURES / "ip-location-db"


@pytest.fixture(scope="session")
def ipdata_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with the IP data fixture installed through the real installer."""
    from derisk.enrich.update import update

    root = tmp_path_factory.mktemp("derisk-data")
    update(root, source=IPDATA_FIXTURE)
    return root


@pytest.fixture
def data_env(ipdata_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point derisk at the fixture data through the environment, as a user would."""
    monkeypatch.setenv("DERISK_DATA_DIR", str(ipdata_dir))
    yield ipdata_dir


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / "ws"
