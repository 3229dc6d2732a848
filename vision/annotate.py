"""Draw a reading onto its image: the picture the bot sends back to the user."""

from __future__ import annotations

import cv2
import numpy as np

from vision.reader import Reading
from vision.segment.resolution import downscale

# BGR colours: confident digits in green, doubtful ones in orange-red.
OK_COLOUR = (40, 170, 40)
LOW_COLOUR = (0, 90, 255)
MAX_SIDE = 1280  # Telegram shows a photo at most this size: more is only upload and encoding


def annotate(image: np.ndarray, reading: Reading, *, max_side: int = MAX_SIDE) -> np.ndarray:
    """A BGR copy of `image` with each digit's box and label; downscaled if huge.

    Line widths and font sizes follow the image (and digit) size so labels stay readable
    on a phone screen.
    """
    if image.ndim == 2:
        canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        canvas = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    else:
        canvas = image.copy()
    h, w = canvas.shape[:2]
    # Boxes are in the reading's coordinates (the original image); the image may differ.
    sx = w / reading.width if reading.width else 1.0
    sy = h / reading.height if reading.height else 1.0
    factor = min(1.0, max_side / max(h, w))
    if factor < 1.0:
        # A thin strip keeps at least one pixel across (OpenCV refuses a 0-pixel side).
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        canvas = downscale(canvas, size)  # area-averaged: thin strokes stay visible
    else:
        # Tiny images (a cut-out cell) are enlarged so labels fit.
        factor = max(1.0, 320 / max(h, w))
        if factor > 1.0:
            size = (max(1, round(w * factor)), max(1, round(h * factor)))
            canvas = cv2.resize(canvas, size, cv2.INTER_CUBIC)
    ch, cw = canvas.shape[:2]
    base = max(ch, cw)
    thickness = max(1, round(base / 400))
    for d in reading.digits:
        x, y, bw, bh = d.box
        x0, y0 = round(x * sx * factor), round(y * sy * factor)
        x1, y1 = round((x + bw) * sx * factor), round((y + bh) * sy * factor)
        colour = LOW_COLOUR if d.low_confidence else OK_COLOUR
        cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, thickness)
        label = str(d.label)
        font_scale = max(0.4, min(base / 900, (y1 - y0) / 40))
        ft = max(1, round(font_scale * 2))
        (tw, th), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, ft)
        ty = y0 - 3 if y0 - th - 6 >= 0 else min(ch - 2, y1 + th + 3)
        cv2.rectangle(canvas, (x0, ty - th - 3), (x0 + tw + 4, ty + baseline), colour, -1)
        cv2.putText(
            canvas,
            label,
            (x0 + 2, ty),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (255, 255, 255),
            ft,
            cv2.LINE_AA,
        )
    return canvas


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of a BGR or grey image."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("could not encode the image as JPEG")
    return buf.tobytes()


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a BGR or grey image."""
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("could not encode the image as PNG")
    return buf.tobytes()
