"""derisk's private in-memory DuckDB databases spill into a private folder of the process, never into
``.tmp`` of the directory derisk was started in (DuckDB's default), and the folder goes with the
process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from derisk.store import answers, everead, zeekread
from derisk.store.spill import spill_directory


def test_private_databases_spill_into_the_process_folder() -> None:
    folder = spill_directory()
    assert Path(folder).is_dir() and (os.stat(folder).st_mode & 0o777) == 0o700
    for con in (zeekread.private_connection(), everead.connect()):
        try:
            assert con.execute("SELECT current_setting('temp_directory')").fetchone() == (folder,)
        finally:
            con.close()
    assert answers  # imported: its lazily opened database takes the same setting (checked by grep below)
    source = Path(answers.__file__).read_text(encoding="utf-8")
    assert '"temp_directory": spill_directory()' in source


def test_a_removed_spill_folder_is_made_again() -> None:
    """Ctrl-C removes the process's scratch (derisk.scratch.remove_own) before the fast exit; a
    program that runs the command line in-process goes on, and its next database must spill again."""
    import shutil

    first = spill_directory()
    shutil.rmtree(first)
    again = spill_directory()
    assert again != first and Path(again).is_dir() and (os.stat(again).st_mode & 0o777) == 0o700


def test_a_large_sort_leaves_nothing_in_the_working_directory(tmp_path: Path) -> None:
    script = (
        "from derisk.store.zeekread import private_connection\n"
        "from derisk.store.spill import spill_directory\n"
        "con = private_connection()\n"
        "con.execute(\"SET memory_limit = '64MB'\")\n"
        "con.execute('SELECT count(*) FROM (SELECT i, md5(i::VARCHAR) m FROM range(3000000) t(i) ORDER BY m)').fetchall()\n"
        "print(spill_directory())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []  # no .tmp here
    assert not Path(done.stdout.strip()).exists()  # removed when the process ended
