"""Know and store do not import each other (the import circle the scale work broke stays broken)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parent.parent / "src" / "derisk"


def _runtime_imports(path: Path) -> set[str]:
    """Modules ``path`` imports at run time (module level or inside functions), not type-only ones."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                type_only.update(id(n) for n in ast.walk(child))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _offenders(package: str, forbidden: str) -> list[str]:
    return sorted(
        f"{path.name} imports {module}"
        for path in (SRC / package).glob("*.py")
        for module in _runtime_imports(path)
        if module == forbidden or module.startswith(forbidden + ".")
    )


def test_store_does_not_import_know() -> None:
    assert _offenders("store", "derisk.know") == []


def test_know_does_not_import_store() -> None:
    assert _offenders("know", "derisk.store") == []


def test_the_check_sees_function_level_imports(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from derisk.store.workspace import Workspace\n"
        "def f():\n    from derisk.store import entities\n"
    )
    assert _runtime_imports(sample) >= {"derisk.store", "derisk.store.entities"}
    assert "derisk.store.workspace" not in _runtime_imports(sample)
