"""The packages' dependencies point one way; `digits` is the composition root."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"digits", "vision", "db", "training", "serving", "bot", "web", "benchmarks"}
# What each package may import from the project (itself always).
ALLOWED = {
    "vision": set(),
    "db": set(),
    "training": {"vision", "db"},
    "serving": {"vision", "db"},
    "bot": {"serving", "vision", "db"},
    "web": {"serving", "vision", "db"},
    "benchmarks": {"vision", "db", "training", "serving", "bot", "web"},
    "digits": PROJECT,
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & PROJECT


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) - ALLOWED[package] - {package})
        for path in (ROOT / package).rglob("*.py")
    }
    offenders = {path: bad for path, bad in offenders.items() if bad}
    assert offenders == {}


def test_every_package_is_checked() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages <= set(ALLOWED), packages - set(ALLOWED)
