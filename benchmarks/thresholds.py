"""How many hand-set numbers the segmentation holds: the count issue 23 asks to bring down.

Every int or float literal in the code of `vision/segment/*.py` counts, except values
that are not tuned: 0, ±1 and 2 (identities, counts, halving), 255 and 256 (the uint8
range), floats of at most 1e-5 (guards against dividing by zero), booleans, docstrings,
anything inside a subscript (`shape[:2]`, `a[..., 0]`), a number compared with an array's
`.shape` or `.ndim` (channel counts, ranks) and the bounds of `range` and `np.arange`. A
module-level named constant counts once, where it is defined.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import vision.segment

NOT_TUNED = {0, 1, -1, 2, 255, 256}
LOOP_BOUNDS = {"range", "arange"}


@dataclass(frozen=True)
class Threshold:
    """One hand-set number: where it is and the line it is on."""

    module: str
    line: int
    value: float
    source: str


def _about_shape(node: ast.AST) -> bool:
    while isinstance(node, ast.Subscript):
        node = node.value
    return isinstance(node, ast.Attribute) and node.attr in ("shape", "ndim")


def _not_thresholds(tree: ast.AST) -> set[int]:
    """ids of the nodes whose numbers are indices, shapes, loop bounds or docstrings."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        inside: list[ast.AST] = []
        if isinstance(node, ast.Subscript):
            inside = [node.slice]
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            inside = sides if any(_about_shape(s) for s in sides) else []
        elif isinstance(node, ast.Call):
            func = node.func
            name = getattr(func, "id", None) or getattr(func, "attr", "")
            inside = list(node.args) if name in LOOP_BOUNDS else []
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            inside = [node.value]  # a docstring
        skip.update(id(n) for part in inside for n in ast.walk(part))
    return skip


def thresholds(path: Path) -> list[Threshold]:
    """The hand-set numbers of one module, in line order."""
    text = path.read_text()
    tree = ast.parse(text)
    skip = _not_thresholds(tree)
    lines = text.splitlines()
    found = [
        Threshold(path.stem, node.lineno, node.value, lines[node.lineno - 1].strip())
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and type(node.value) in (int, float)
        and id(node) not in skip
        and node.value not in NOT_TUNED
        and not (isinstance(node.value, float) and abs(node.value) <= 1e-5)
    ]
    return sorted(found, key=lambda t: t.line)


def count_segment_thresholds(folder: Path | None = None) -> dict[str, list[Threshold]]:
    """Per module of the segmentation package (or of `folder`), its hand-set numbers."""
    root = folder or Path(vision.segment.__file__).parent
    return {path.stem: thresholds(path) for path in sorted(root.glob("*.py"))}
