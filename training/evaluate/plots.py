"""Evaluation plots as PNG files (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from training.evaluate.metrics import NUM_CLASSES, pr_curve, roc_curve


def confusion(cm: np.ndarray, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    shown = np.log1p(cm)
    ax.imshow(shown, cmap="Blues")
    for i in range(NUM_CLASSES):
        for j in range(NUM_CLASSES):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    str(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if shown[i, j] > shown.max() * 0.6 else "black",
                )
    ax.set(xlabel="predicted", ylabel="true", title=title, xticks=range(10), yticks=range(10))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curves(labels: np.ndarray, probs: np.ndarray, path: Path, title: str, kind: str) -> None:
    """Per-class one-vs-rest ROC (kind='roc') or precision-recall (kind='pr') curves."""
    fig, ax = plt.subplots(figsize=(6, 5.5))
    for c in range(NUM_CLASSES):
        positive = labels == c
        if kind == "roc":
            x, y, score = roc_curve(probs[:, c], positive)
        else:
            x, y, score = pr_curve(probs[:, c], positive)
        ax.plot(x, y, lw=1, label=f"{c}: {score:.4f}")
    if kind == "roc":
        ax.set(xscale="log", xlim=(1e-4, 1), ylim=(0.9, 1.001), xlabel="false positive rate")
        ax.set(ylabel="true positive rate", title=f"{title}: ROC (AUC)")
    else:
        ax.set(xlim=(0.8, 1.001), ylim=(0.8, 1.001), xlabel="recall", ylabel="precision")
        ax.set(title=f"{title}: precision-recall (AP)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def worst_errors(
    images: np.ndarray, labels: np.ndarray, probs: np.ndarray, path: Path, title: str, n: int = 48
) -> None:
    """Grid of the most confidently wrong digits, captioned 'true→predicted (confidence)'."""
    preds = probs.argmax(1)
    wrong = np.nonzero(preds != labels)[0]
    wrong = wrong[np.argsort(-probs[wrong, preds[wrong]])][:n]
    cols = 8
    rows = max(1, int(np.ceil(len(wrong) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.3))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, i in zip(np.ravel(axes), wrong, strict=False):
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{labels[i]}→{preds[i]} ({probs[i, preds[i]]:.2f})", fontsize=7)
    fig.suptitle(f"{title}: {len(np.nonzero(preds != labels)[0])} errors, worst {len(wrong)}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
