"""Seeded synthetic photos of handwritten numbers, built from MNIST *test* digits.

The reader is tuned on these and on real photos; MNIST test digits are never trained on,
so a synthetic photo measures reading, not memory. Each photo gets what phone pictures
of paper have: paper colour and texture, ruled or squared paper, uneven light and a
shadow, perspective, blur, noise and JPEG artefacts, blue or black ink, varied digit size
and spacing, some touching pairs, several numbers and lines.

Regenerate the committed samples with `digits samples`.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import cv2
import numpy as np

from vision.annotate import encode_jpeg

log = logging.getLogger(__name__)

SIZES = ((1280, 960), (1280, 960), (1280, 960), (1024, 768), (800, 600), (640, 480))
PAPERS = ((245, 245, 245), (225, 238, 246), (215, 230, 235), (200, 200, 200), (235, 225, 250))
INKS = ((120, 30, 20), (150, 60, 25), (30, 30, 30), (60, 50, 45), (90, 20, 10))  # BGR blues/blacks
INK = 30  # a pixel of a 28x28 white-on-black digit above this is ink
SATURATED = 0.9  # a digit whose strongest pixel is fainter than this is stretched to full ink


def has_ink(img28: np.ndarray) -> bool:
    """Whether `digit_alpha` can draw this digit (some pixel above INK)."""
    return bool(img28.max() > INK)


def digit_alpha(img28: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """A tight MNIST digit scaled to `height` px, as alpha in [0, 1], drawn as a pen would.

    A pen's stroke does not break where MNIST's grey thins out: the sharpened and thinned
    digit keeps the pieces MNIST drew it in (without this, one digit in ten came out
    dotted or in parts, which no photo of a written number shows).

    MNIST's ink saturates (its strongest pixel is 254 or 255), and the sharpening below
    keeps only what is darker than a cut of 0.3-0.6: a digit whose strongest pixel is
    fainter (USPS as the reader normalises it peaks as low as 84) would keep nothing, so
    such a digit is first stretched to full ink. A digit with no ink at all is an error.
    """
    ys, xs = np.nonzero(img28 > INK)
    if not ys.size:
        raise ValueError(f"a digit with no ink (no pixel above {INK}) cannot be drawn")
    crop = img28[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32) / 255.0
    peak = float(crop.max())
    if peak < SATURATED:
        crop /= peak
    h, w = crop.shape
    width = max(2, round(w * height / h * rng.uniform(0.9, 1.1)))
    alpha = cv2.resize(crop, (width, height), interpolation=cv2.INTER_CUBIC)
    pieces = _pieces(alpha > INK / 255)
    # Pens draw thinner than MNIST's blurred strokes on large digits: sharpen the edge,
    # less where that would part the strokes.
    cut = rng.uniform(0.3, 0.6)
    sharp = np.clip((alpha - cut) * 3.0, 0.0, 1.0)
    while _pieces(sharp > 0.5) > pieces and cut > 0.0:
        cut = max(0.0, cut - 0.1)
        sharp = np.clip((alpha - cut) * 3.0, 0.0, 1.0)
    return _pen_width(sharp, height, rng)


def _pieces(mask: np.ndarray) -> int:
    """Connected pieces of a mask (8-connected)."""
    return cv2.connectedComponents(mask.view(np.uint8), connectivity=8)[0] - 1


def _pen_width(alpha: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """Bring the stroke to a pen's width (5-11 % of the digit height, at least 1.5 px).

    MNIST strokes scaled up to a large digit become felt-marker bars several times bolder
    than a ballpoint or gel pen draws; only strokes far from the pen's width are changed,
    and a stroke is thinned only as far as it stays in one piece.
    """
    from vision.normalize import stroke_width

    width = stroke_width(alpha > 0.5)
    target = max(1.5, height * rng.uniform(0.05, 0.11))
    steps = round((width - target) / 2.0)
    if steps == 0 or width <= 0:
        return alpha
    if steps < 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * -steps + 1, 2 * -steps + 1))
        return cv2.dilate(alpha, k)
    drawn = alpha > 0.5
    pieces, area = _pieces(drawn), int(drawn.sum())
    for s in range(steps, 0, -1):
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * s + 1, 2 * s + 1))
        thinned = cv2.erode(alpha, k)
        left = thinned > 0.5
        if left.sum() > 0.3 * area and _pieces(left) <= pieces:
            return thinned
    return alpha


def paper_texture(w: int, h: int, digit_h: int, rng: np.random.Generator) -> np.ndarray:
    """Paper with texture; ruled or squared at a spacing that suits the writing's size.

    People write between the rules of lined paper (digits about 0.55-0.85 of the spacing)
    and one or two cells tall on squared paper.
    """
    base = np.array(PAPERS[rng.integers(len(PAPERS))], np.float32) + rng.normal(0, 6, 3)
    paper = np.ones((h, w, 3), np.float32) * base
    # Low-frequency texture.
    tex = cv2.resize(rng.normal(0, 1, (h // 32 + 2, w // 32 + 2)).astype(np.float32), (w, h))
    paper += tex[..., None] * rng.uniform(1, 5)
    kind = rng.choice(["plain", "ruled", "squared"], p=[0.4, 0.3, 0.3])
    colour = np.array(rng.choice([(200, 160, 130), (170, 170, 170), (190, 190, 230)]), np.float32)
    ratio = rng.uniform(1.2, 1.8) if kind == "ruled" else rng.uniform(0.5, 1.3)
    step = max(12, round(digit_h * ratio))
    thick = int(rng.integers(1, 3))
    if kind in {"ruled", "squared"}:
        off = int(rng.integers(0, step))
        for y in range(off, h, step):
            paper[y : y + thick] = paper[y : y + thick] * 0.3 + colour * 0.7
        if kind == "squared":
            for x in range(off, w, step):
                paper[:, x : x + thick] = paper[:, x : x + thick] * 0.3 + colour * 0.7
    return paper


def uneven_light(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A light gradient, a vignette and, sometimes, a soft shadow over a float image."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = rng.uniform(-0.35, 0.35, 2)
    light = 1.0 + gx * (xx / w - 0.5) + gy * (yy / h - 0.5)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    r = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / max(h, w)
    light *= 1.0 - rng.uniform(0.0, 0.35) * r
    if rng.random() < 0.4:
        # A soft shadow: a half-plane or blob darkened, with a blurred edge.
        pts = rng.uniform(0, 1, (4, 2)) * [w, h]
        poly = np.zeros((h, w), np.float32)
        corner = np.array([[0, h], [w * rng.uniform(0.2, 0.7), h], pts[0], pts[1]])
        cv2.fillPoly(poly, [corner.astype(np.int32)], 1.0)
        k = int(max(h, w) * rng.uniform(0.01, 0.08)) | 1
        poly = cv2.GaussianBlur(poly, (k, k), 0)
        light *= 1.0 - rng.uniform(0.2, 0.5) * poly
    return img * light[..., None]


def camera_jpeg(img: np.ndarray, rng: np.random.Generator, max_blur: float) -> bytes:
    """What the camera adds to a float BGR picture: blur (sigma up to `max_blur`), sensor
    noise and JPEG compression at a random quality; returns the JPEG bytes."""
    sigma = rng.uniform(0.0, max_blur)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + rng.normal(0, rng.uniform(1, 6), img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    quality = int(rng.integers(45, 92))
    return encode_jpeg(img, quality)


def _perspective(img: np.ndarray, rng: np.random.Generator, fill: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    jitter = rng.uniform(-0.04, 0.04, (4, 2)) * [w, h]
    angle = np.deg2rad(rng.uniform(-4, 4))
    c, s = np.cos(angle), np.sin(angle)
    centre = np.float32([w / 2, h / 2])
    rot = (src - centre) @ np.float32([[c, -s], [s, c]]).T + centre
    dst = (rot + jitter).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(
        img,
        m,
        (w, h),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=tuple(float(v) for v in fill),
    )


def generate_photo(
    rng: np.random.Generator,
    digits_pool: tuple[np.ndarray, np.ndarray],
    sources: list[int] | None = None,
) -> tuple[np.ndarray, str]:
    """One synthetic photo (BGR uint8) and its expected reading.

    `sources`, when given, receives the pool index of each digit placed, in reading order
    (the benchmark classifies those pristine digits to show the classifier's own ceiling).
    """
    placed_idx: list[int] = []
    images, labels = digits_pool
    w, h = SIZES[rng.integers(len(SIZES))]
    n_lines = int(rng.choice([1, 1, 2, 2, 3]))
    digit_h = int(rng.uniform(0.05, 0.28 if n_lines == 1 else 0.17) * h)
    digit_h = max(digit_h, 24)
    paper = paper_texture(w, h, digit_h, rng)
    ink = np.array(INKS[rng.integers(len(INKS))], np.float32) + rng.normal(0, 8, 3)
    alpha_canvas = np.zeros((h, w), np.float32)
    line_gap = digit_h * rng.uniform(1.5, 2.0)
    top = rng.uniform(0.08, 0.2) * h
    text_lines = []
    margin = int(0.06 * w)
    for li in range(n_lines):
        y_base = top + li * line_gap
        if y_base + digit_h > 0.92 * h:
            break
        slope = np.tan(np.deg2rad(rng.uniform(-3, 3)))
        x = margin + rng.uniform(0, 0.1) * w
        n_numbers = int(rng.choice([1, 1, 2, 3]))
        numbers = []
        for _ in range(n_numbers):
            n_digits = int(rng.integers(1, 13))
            placed = ""
            for _ in range(n_digits):
                idx = int(rng.integers(len(images)))
                dh = int(digit_h * rng.uniform(0.85, 1.1))
                alpha = digit_alpha(images[idx], dh, rng)
                aw = alpha.shape[1]
                if x + aw > w - margin:
                    break
                yy = int(y_base + (x - margin) * slope + rng.uniform(-0.06, 0.06) * digit_h)
                yy = int(np.clip(yy, 0, h - dh))
                region = alpha_canvas[yy : yy + dh, int(x) : int(x) + aw]
                np.maximum(region, alpha[: region.shape[0], : region.shape[1]], out=region)
                placed += str(int(labels[idx]))
                placed_idx.append(idx)
                touching = rng.random() < 0.08
                gap = rng.uniform(-0.06, 0.0) if touching else rng.uniform(0.08, 0.35)
                x += aw + gap * digit_h
            if placed:
                numbers.append(placed)
                x += rng.uniform(1.6, 2.6) * digit_h - 0.2 * digit_h
            if x > w - margin - digit_h:
                break
        if numbers:
            text_lines.append(" ".join(numbers))
    if not text_lines:  # always at least one digit
        idx = int(rng.integers(len(images)))
        alpha = digit_alpha(images[idx], digit_h, rng)
        y0, x0 = int(0.3 * h), int(0.3 * w)
        alpha_canvas[y0 : y0 + alpha.shape[0], x0 : x0 + alpha.shape[1]] = alpha
        text_lines = [str(int(labels[idx]))]
        placed_idx = [idx]
    strength = rng.uniform(0.75, 1.0)
    a = alpha_canvas[..., None] * strength
    img = paper * (1 - a) + ink * a
    img = uneven_light(img, rng)
    img = _perspective(img, rng, fill=paper[0, 0] * 0.5)
    data = camera_jpeg(img, rng, max_blur=1.3)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if sources is not None:
        sources.extend(placed_idx)
    return img, "\n".join(text_lines)


def generate_set(
    n: int, seed: int, mnist_test: tuple[np.ndarray, np.ndarray] | object
) -> list[tuple[np.ndarray, str]]:
    """`n` photos from MNIST test digits (a `Split` or an (images, labels) pair)."""
    pool = digit_pool(mnist_test)
    rng = np.random.default_rng(seed)
    return [generate_photo(rng, pool) for _ in range(n)]


def digit_pool(mnist_test: tuple[np.ndarray, np.ndarray] | object) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of an MNIST split, or of such a tuple as given."""
    if isinstance(mnist_test, tuple):
        return mnist_test
    return mnist_test.images, mnist_test.labels  # type: ignore[attr-defined]


SAMPLE_SEED = 20240601


def write_samples(out_dir: Path, mnist_test: object, n: int = 6, seed: int = SAMPLE_SEED) -> None:
    """Write `n` small sample JPEGs and `expected.csv` (file,text) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    photos = generate_set(n, seed, mnist_test)
    rows = []
    for i, (img, text) in enumerate(photos, 1):
        name = f"sample{i:02d}.jpg"
        h, w = img.shape[:2]
        f = min(1.0, 960 / max(h, w))
        small = cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out_dir / name), small, [cv2.IMWRITE_JPEG_QUALITY, 85])
        rows.append((name, text))
    with open(out_dir / "expected.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "text"])
        writer.writerows(rows)
