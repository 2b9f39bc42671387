"""derisk.store: the workspace, one embedded DuckDB database; the only package that talks to DuckDB.

This module is kept free of heavy imports: the command line reads the workspace's default location
and file name from here without loading the database engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

#: The database file inside a workspace directory.
DB_FILE: Final = "derisk.duckdb"
#: Where a workspace lives unless ``--workspace`` says otherwise.
DEFAULT_WORKSPACE: Final = Path("derisk-workspace")
