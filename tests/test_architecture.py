"""Arrows point down: each library package imports only the packages below it, so the library
reads bottom-up (core first) and no two concerns depend on each other."""

import ast
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parents[1] / "src" / "imagepipe"
# What each package may import, besides itself.
ALLOWED = {
    "core": set(),
    "data": {"core"},
    "validation": {"core", "data"},
    "models": {"core"},
    # A search trial's side inside a training stage: its spec, study storage and pruning hook.
    "search": {"core"},
    "training": {"core", "data", "models", "search"},
    "tracking": {"core", "data", "models", "training", "search"},
    "orchestration": {"core", "search", "tracking"},
    "scoring": {"core", "data", "validation", "models", "tracking"},
    "families": {"core", "data", "models", "training", "tracking"},
}


def imported_packages(package: Path) -> dict[str, set[str]]:
    """imagepipe package name -> the files of package that import it."""
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] == "imagepipe" and len(parts) > 1:
                    found.setdefault(parts[1], set()).add(path.name)
    return found


def test_every_package_is_placed():
    assert {path.name for path in LIBRARY.iterdir() if path.is_dir() and path.name != "__pycache__"} == set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_the_packages_below_it(package):
    imports = imported_packages(LIBRARY / package)
    upward = {name: files for name, files in imports.items() if name != package and name not in ALLOWED[package]}
    assert not upward, f"imagepipe.{package} imports {upward}; it may import {sorted(ALLOWED[package])}"
