"""The dashboard's pictures, drawn server side with matplotlib (Agg, one figure per call).

``matplotlib.figure.Figure`` without pyplot keeps no global state, so charts can be
drawn in worker threads side by side.
"""

from __future__ import annotations

import io
from collections import defaultdict

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from db.dashboard import DailyAccuracy


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def accuracy_chart(rows: list[DailyAccuracy]) -> bytes:
    """Per day and model version: the share of answered readings read exactly (solid)
    and of their labelled digits read right (dashed)."""
    from datetime import timedelta

    from matplotlib.dates import DateFormatter, DayLocator

    fig = Figure(figsize=(7, 3.2))
    ax = fig.add_subplot()
    by_version: dict[str, list[DailyAccuracy]] = defaultdict(list)
    for row in rows:
        by_version[row.model_version].append(row)
    for version, points in sorted(by_version.items()):
        days = [p.day for p in points]
        (line,) = ax.plot(
            days,
            [100 * p.accuracy for p in points],
            marker="o",
            label=f"{version}: readings ({sum(p.answered for p in points)} answered)",
        )
        labelled = [
            (p.day, 100 * p.digits_correct / p.digits_labelled) for p in points if p.digits_labelled
        ]
        if labelled:
            ax.plot(
                [d for d, _ in labelled],
                [v for _, v in labelled],
                marker="s",
                linestyle="--",
                color=line.get_color(),
                label=f"{version}: digits",
            )
    if not rows:
        ax.text(0.5, 0.5, "no answered readings yet", ha="center", va="center")
        ax.set_xticks([])
    else:
        first, last = min(r.day for r in rows), max(r.day for r in rows)
        ax.set_xlim(first - timedelta(days=1), last + timedelta(days=1))
        span = (last - first).days + 2
        ax.xaxis.set_major_locator(DayLocator(interval=max(1, span // 7)))
        ax.xaxis.set_major_formatter(DateFormatter("%b %d"))
        ax.legend(loc="lower left", fontsize=7)
    ax.set_ylim(0, 105)
    ax.set_ylabel("read right (%)")
    ax.set_title("Live accuracy on answered readings, per day (UTC)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def confusion_chart(counts: list[list[int]]) -> bytes:
    """The labelled digits' confusion matrix; mistakes coloured by count."""
    fig = Figure(figsize=(4.6, 4.2))
    ax = fig.add_subplot()
    off = [[0 if t == p else counts[t][p] for p in range(10)] for t in range(10)]
    image = ax.imshow(off, cmap="Reds")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="mistakes")
    for t in range(10):
        for p in range(10):
            if counts[t][p]:
                ax.text(p, t, str(counts[t][p]), ha="center", va="center", fontsize=7)
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("read as")
    ax.set_ylabel("true digit")
    ax.set_title("Labelled digits (diagonal: read right)")
    fig.tight_layout()
    return _png(fig)
