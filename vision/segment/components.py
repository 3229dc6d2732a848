"""Connected components of binary masks: the unit every later step reasons in."""

from __future__ import annotations

import cv2
import numpy as np


def components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(count, labels, stats) of the 8-connected components of a mask.

    BBDT gives the same labels and statistics as OpenCV's default algorithm (Spaghetti)
    whose statistics pass is about three times slower (measured with OpenCV 5.0). The
    labels are 16-bit: the same labels and statistics as 32-bit ones, in two thirds of the
    time (the reader labels about 16 masks a photo); a mask of more than 65,534 shapes
    (noise, never writing) is labelled again with 32-bit labels.
    """
    m = np.ascontiguousarray(mask).view(np.uint8) if mask.dtype == bool else mask.astype(np.uint8)
    try:
        return cv2.connectedComponentsWithStatsWithAlgorithm(m, 8, cv2.CV_16U, cv2.CCL_BBDT)[:3]
    except cv2.error:
        return cv2.connectedComponentsWithStatsWithAlgorithm(m, 8, cv2.CV_32S, cv2.CCL_BBDT)[:3]


def half_width(mask: np.ndarray) -> float:
    """Half the boldest stroke's width: the mask's largest distance to background."""
    # Padded: OpenCV does not count the outside of the image as background.
    padded = cv2.copyMakeBorder(mask.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, 0)
    return float(cv2.distanceTransform(padded, cv2.DIST_L2, 3).max())


def holding(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The components of `mask` that hold a pixel of `seeds` (bool masks)."""
    n, labels, stats = components(mask)
    return select(labels, stats, labels_holding(labels, n, seeds))


def labels_holding(labels: np.ndarray, n: int, seeds: np.ndarray) -> np.ndarray:
    """Per label of `n`, whether its component holds a pixel of `seeds` (never label 0)."""
    keep = np.zeros(n, bool)
    keep[labels[seeds]] = True
    keep[0] = False
    return keep


def select(labels: np.ndarray, stats: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Bool mask of the components that `keep` flags, by label (label 0 never counts).

    Usually only a few components are dropped: clearing them in their boxes is several
    times faster than looking up every pixel's label, which remains the way for many.
    """
    drop = np.nonzero(~keep[1:])[0] + 1
    if drop.size > 32:
        flags = np.array(keep, bool)
        flags[0] = False
        return np.take(flags, labels)
    out = labels > 0
    for i in drop:
        x, y, w, h = stats[i, :4]
        box = out[y : y + h, x : x + w]
        box[labels[y : y + h, x : x + w] == i] = False
    return out
