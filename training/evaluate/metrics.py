"""Classification metrics the field expects, in plain numpy (no scikit-learn needed)."""

from __future__ import annotations

from typing import Any

import numpy as np

NUM_CLASSES = 10


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, k: int = NUM_CLASSES) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    return np.bincount(labels.astype(np.int64) * k + preds, minlength=k * k).reshape(k, k)


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(false positive rate, true positive rate, AUC) for one class, one-vs-rest."""
    order = np.argsort(-scores, kind="stable")
    pos = positive[order].astype(np.float64)
    tps = np.concatenate([[0.0], np.cumsum(pos)])
    fps = np.concatenate([[0.0], np.cumsum(1.0 - pos)])
    tpr = tps / max(tps[-1], 1.0)
    fpr = fps / max(fps[-1], 1.0)
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def pr_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(recall, precision, average precision) for one class, one-vs-rest."""
    order = np.argsort(-scores, kind="stable")
    pos = positive[order].astype(np.float64)
    tps = np.cumsum(pos)
    precision = tps / np.arange(1, len(pos) + 1)
    recall = tps / max(pos.sum(), 1.0)
    ap = float((precision * pos).sum() / max(pos.sum(), 1.0))
    return np.concatenate([[0.0], recall]), np.concatenate([[1.0], precision]), ap


def classification_report(labels: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1/support, ROC AUC and AP, confusion matrix."""
    labels = np.asarray(labels).astype(np.int64)
    preds = probs.argmax(1)
    cm = confusion_matrix(labels, preds)
    per_class = []
    for c in range(NUM_CLASSES):
        tp = cm[c, c]
        precision = tp / max(cm[:, c].sum(), 1)
        recall = tp / max(cm[c, :].sum(), 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        positive = labels == c
        _, _, auc = roc_curve(probs[:, c], positive)
        _, _, ap = pr_curve(probs[:, c], positive)
        per_class.append(
            {
                "class": c,
                "precision": round(float(precision), 5),
                "recall": round(float(recall), 5),
                "f1": round(float(f1), 5),
                "support": int(cm[c, :].sum()),
                "roc_auc": round(auc, 6),
                "average_precision": round(ap, 6),
            }
        )
    return {
        "samples": len(labels),
        "accuracy": round(float((preds == labels).mean()) if len(labels) else 0.0, 6),
        "errors": int((preds != labels).sum()),
        "macro_f1": round(float(np.mean([row["f1"] for row in per_class])), 5),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
    }
