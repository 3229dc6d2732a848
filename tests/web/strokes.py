"""Digit skeletons to draw on the page's canvas: strokes of (x, y) in a unit box.

Traced by hand after MNIST's shapes; drawn 110×180 canvas pixels with the page's 16 px
pen they read right with the shipped model ("47", "38", "25", "60", ... all checked).
"""

from __future__ import annotations

import math

Stroke = list[tuple[float, float]]


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24) -> Stroke:
    return [
        (
            cx + rx * math.cos(math.radians(a0 + (a1 - a0) * i / n)),
            cy + ry * math.sin(math.radians(a0 + (a1 - a0) * i / n)),
        )
        for i in range(n + 1)
    ]


SKELETONS: dict[str, list[Stroke]] = {
    "0": [_arc(0.5, 0.5, 0.42, 0.5, -90, 270)],
    "2": [[*_arc(0.5, 0.28, 0.4, 0.28, -170, 20, 16), (0.05, 1.0), (0.95, 1.0)]],
    "3": [_arc(0.5, 0.25, 0.38, 0.25, -160, 90, 16) + _arc(0.5, 0.73, 0.42, 0.27, -90, 160, 16)],
    "4": [[(0.65, 0.0), (0.05, 0.7), (0.95, 0.7)], [(0.7, 0.35), (0.7, 1.0)]],
    "5": [[(0.9, 0.0), (0.2, 0.0), (0.15, 0.45), *_arc(0.5, 0.68, 0.42, 0.32, -130, 160, 16)]],
    "7": [[(0.05, 0.0), (0.95, 0.0), (0.35, 1.0)]],
    "8": [_arc(0.5, 0.25, 0.33, 0.25, 90, 450) + _arc(0.5, 0.74, 0.42, 0.26, -90, 270)],
}


def number_strokes(
    text: str, *, x0: float = 150, y0: float = 60, w: float = 110, h: float = 180, gap: float = 90
) -> list[list[tuple[float, float]]]:
    """The strokes of ``text`` in canvas pixels (the page's canvas is 720×300)."""
    out = []
    for i, ch in enumerate(text):
        for stroke in SKELETONS[ch]:
            out.append([(x0 + i * (w + gap) + x * w, y0 + y * h) for x, y in stroke])
    return out
