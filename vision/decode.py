"""Decode photos and scans into BGR/grey uint8 pages, refusing what would hurt the server.

Users send anything: phone JPEGs with an EXIF rotation, screenshots, multi-page TIFFs,
PDF scans, renamed text files, truncated uploads, decompression bombs. Every failure is
an `ImageError` subclass whose message is one sentence an end user can be shown.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

MAX_PIXELS = 40_000_000
MAX_PAGES = 20
# Handwriting on a PDF page: 150 dpi makes a 1 cm digit ~60 px tall, plenty for the reader.
PDF_DPI = 150


class ImageError(ValueError):
    """The input cannot be read as an image; the message is fit for an end user."""


class UnsupportedFormat(ImageError):
    """Not an image format the reader understands (e.g. a text file)."""


class CorruptImage(ImageError):
    """A known format, but the data is truncated or damaged."""


class ImageTooLarge(ImageError):
    """More pixels than the configured limit (decompression-bomb guard)."""


class TooManyPages(ImageError):
    """A PDF or TIFF with more pages than the configured limit."""


_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"BM", "bmp"),
    (b"%PDF", "pdf"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)


def sniff_format(data: bytes) -> str | None:
    """The container format from the magic bytes, or None (extensions are not trusted)."""
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    # A PDF may have a little junk before its header.
    if b"%PDF-" in data[:1024]:
        return "pdf"
    return None


def _read_bytes(data: bytes | bytearray | memoryview | str | Path) -> bytes:
    if isinstance(data, str | Path):
        path = Path(data)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise ImageError(f"The file {path.name} does not exist.") from exc
        except IsADirectoryError as exc:
            raise ImageError(f"{path.name} is a folder, not an image.") from exc
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    if not isinstance(data, bytes):
        raise TypeError(f"expected bytes or a path, got {type(data).__name__}")
    return data


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise CorruptImage("The image has no pixels.")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"The image is too large ({width}×{height} pixels; the limit is "
            f"{max_pixels / 1e6:.0f} megapixels)."
        )


def _to_uint8_array(img: Image.Image) -> np.ndarray:
    """A PIL image (any mode) → grey or BGR uint8, alpha composited onto white."""
    if img.mode in {"RGBA", "LA", "PA"} or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode in {"I;16", "I;16B", "I;16L", "I", "F"}:
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return arr.astype(np.uint8)
    if img.mode == "1":
        img = img.convert("L")
    if img.mode == "L":
        return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _decode_pil(data: bytes, fmt: str, max_pixels: int, max_pages: int) -> list[np.ndarray]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            _check_pixels(img.width, img.height, max_pixels)
            n_frames = int(getattr(img, "n_frames", 1)) if fmt == "tiff" else 1
            if n_frames > max_pages:
                raise TooManyPages(
                    f"The file has {n_frames} pages; at most {max_pages} can be read."
                )
            pages = []
            for index in range(n_frames):
                img.seek(index)
                _check_pixels(img.width, img.height, max_pixels)
                frame = ImageOps.exif_transpose(img) if index == 0 else img.copy()
                pages.append(_to_uint8_array(frame))
            return pages
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge("The image is too large to be read safely.") from exc
    except UnidentifiedImageError as exc:
        # The magic bytes said this format: unreadable past them means damaged.
        raise CorruptImage(f"The {fmt.upper()} image is damaged or incomplete.") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        raise CorruptImage(f"The {fmt.upper()} image is damaged or incomplete.") from exc


def _decode_fast(data: bytes, fmt: str, max_pixels: int) -> np.ndarray | None:
    """OpenCV for JPEG/PNG (faster than PIL, honours EXIF), after a PIL header size check."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            head = Image.open(io.BytesIO(data))
            size = head.size
            mode = head.mode
    except Exception:
        return None
    _check_pixels(size[0], size[1], max_pixels)
    if fmt == "png" and mode not in {"L", "RGB"}:
        return None  # palette, alpha, 16-bit: let PIL handle the conversion
    buf = np.frombuffer(data, np.uint8)
    flag = cv2.IMREAD_GRAYSCALE if mode == "L" else cv2.IMREAD_COLOR
    img = cv2.imdecode(buf, flag)
    return img


def _decode_pdf(data: bytes, max_pixels: int, max_pages: int, dpi: int) -> list[np.ndarray]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except Exception as exc:
        raise CorruptImage("The PDF file is damaged or incomplete.") from exc
    try:
        n = len(pdf)
        if n == 0:
            raise CorruptImage("The PDF file has no pages.")
        if n > max_pages:
            raise TooManyPages(f"The PDF has {n} pages; at most {max_pages} can be read.")
        pages = []
        for index in range(n):
            page = pdf[index]
            try:
                width, height = page.get_size()  # points, 1/72 inch
                scale = dpi / 72.0
                # Shrink the rendering rather than refuse a huge page (posters, plans).
                pixels = width * scale * height * scale
                if pixels > max_pixels:
                    scale *= (max_pixels / pixels) ** 0.5 * 0.99
                bitmap = page.render(scale=scale, grayscale=False)
                rgb = np.asarray(bitmap.to_numpy())
                if (rgb.ndim == 3 and rgb.shape[2] == 4) or rgb.ndim == 3:
                    arr = np.ascontiguousarray(rgb[:, :, :3])
                else:
                    arr = np.ascontiguousarray(rgb)
                # pypdfium2 renders BGR(A) by default, which is what OpenCV wants.
                pages.append(arr.astype(np.uint8, copy=False))
            finally:
                page.close()
        return pages
    except ImageError:
        raise
    except Exception as exc:
        raise CorruptImage("The PDF file is damaged or incomplete.") from exc
    finally:
        pdf.close()


def decode_pages(
    data: bytes | str | Path,
    *,
    max_pixels: int = MAX_PIXELS,
    max_pages: int = MAX_PAGES,
    pdf_dpi: int = PDF_DPI,
) -> list[np.ndarray]:
    """Every page of an image or scan as BGR (or grey) uint8 arrays, EXIF-rotated upright.

    JPEG, PNG, WebP, BMP, GIF and TIFF give one page (TIFF: one per frame), PDF one per
    page rendered at `pdf_dpi`. Raises an `ImageError` subclass for anything unusable.
    """
    raw = _read_bytes(data)
    if not raw:
        raise CorruptImage("The file is empty.")
    fmt = sniff_format(raw)
    if fmt is None:
        raise UnsupportedFormat(
            "This file is not a supported image (JPEG, PNG, WebP, BMP, TIFF or PDF)."
        )
    if fmt == "pdf":
        return _decode_pdf(raw, max_pixels, max_pages, pdf_dpi)
    if fmt == "png" and len(raw) >= 24 and raw[12:16] == b"IHDR":
        # Refuse a bomb from its header alone, before any decoder allocates for it.
        width, height = int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")
        _check_pixels(width, height, max_pixels)
    if fmt in {"jpeg", "png"}:
        img = _decode_fast(raw, fmt, max_pixels)
        if img is not None:
            return [img]
    return _decode_pil(raw, fmt, max_pixels, max_pages)


def decode_image(
    data: bytes | str | Path, *, max_pixels: int = MAX_PIXELS, max_pages: int = MAX_PAGES
) -> np.ndarray:
    """The first page of `data` (see `decode_pages`)."""
    return decode_pages(data, max_pixels=max_pixels, max_pages=max_pages)[0]


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header without decoding pixels, when the format tells it."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            orientation = img.getexif().get(0x0112, 1) if sniff_format(data) == "jpeg" else 1
    except Exception:
        return None
    if orientation in {5, 6, 7, 8}:
        width, height = height, width
    return width, height


def decode_for_reading(
    data: bytes, *, max_side: int, max_pixels: int = MAX_PIXELS
) -> tuple[np.ndarray, float]:
    """First page, decoded small when the reader will downscale anyway: (image, scale).

    `scale` maps decoded pixels back to the original image (original = decoded × scale).
    JPEG decoding at 1/2, 1/4 or 1/8 size is several times faster than full decoding.
    """
    fmt = sniff_format(data) if data else None
    if fmt == "jpeg":
        size = image_size(data)
        if size is not None:
            _check_pixels(size[0], size[1], max_pixels)
            long_side = max(size)
            factor = 1
            for f in (8, 4, 2):
                if long_side / f >= max_side:
                    factor = f
                    break
            if factor > 1:
                flag = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}.get(
                    factor, cv2.IMREAD_REDUCED_COLOR_8
                )
                img = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
                if img is not None and img.size:
                    return img, max(size) / max(img.shape[:2])
    return decode_image(data, max_pixels=max_pixels), 1.0
