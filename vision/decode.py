"""Decode photos and scans into BGR/grey uint8 pages, refusing what would hurt the server.

Users send anything: phone JPEGs with an EXIF rotation, screenshots, multi-page TIFFs,
PDF scans, renamed text files, truncated uploads, decompression bombs. Every failure is
an `ImageError` subclass whose message is one sentence an end user can be shown.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import os
import re
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

MAX_PIXELS = 40_000_000
# Largest file read at all (bytes): checked before reading, so `/dev/zero` cannot fill memory.
MAX_BYTES = 50_000_000
MAX_PAGES = 20
# Handwriting on a PDF page: 150 dpi makes a 1 cm digit ~60 px tall, plenty for the reader.
PDF_DPI = 150
# ... and never more pixels than this per page (an A2 sheet at 150 dpi is 8.7 MP): a
# poster's 14400-pt page is rendered smaller instead of at 40 MP, once, when it is read.
PDF_MAX_PIXELS = 12_000_000
_PDFIUM_ERR_PASSWORD = 4  # FPDF_ERR_PASSWORD


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


class PasswordProtected(ImageError):
    """An encrypted PDF that needs a password to open."""


class FileTooLarge(ImageError):
    """More bytes than the configured limit, refused before the file is read whole."""


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


def read_file(path: str | Path, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of a file, refusing one over `max_bytes` before reading it whole.

    The size is checked on the open file (`fstat`) and the read itself is bounded, so a
    device or a pipe (`/dev/zero`, `/dev/stdin`) that reports no size cannot fill memory.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > max_bytes:
                raise FileTooLarge(_too_large_message(size, max_bytes))
            data = handle.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise ImageError(f"The file {path.name} does not exist.") from exc
    except IsADirectoryError as exc:
        raise ImageError(f"{path.name} is a folder, not an image.") from exc
    except PermissionError as exc:
        raise ImageError(f"The file {path.name} cannot be read (permission denied).") from exc
    except OSError as exc:
        raise ImageError(f"The file {path.name} cannot be read ({exc.strerror or exc}).") from exc
    if len(data) > max_bytes:
        raise FileTooLarge(_too_large_message(None, max_bytes))
    return data


def _too_large_message(size: int | None, max_bytes: int) -> str:
    limit = f"{max_bytes / 1e6:g} MB"
    if size is None:
        return f"The file is too large (the limit is {limit})."
    return f"The file is too large ({size / 1e6:.1f} MB; the limit is {limit})."


def _read_bytes(
    data: bytes | bytearray | memoryview | str | Path, max_bytes: int = MAX_BYTES
) -> bytes:
    if isinstance(data, str | Path):
        return read_file(data, max_bytes)
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise TypeError(f"expected bytes or a path, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise FileTooLarge(_too_large_message(len(data), max_bytes))
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
        return _stretch(np.asarray(img, dtype=np.float32))
    if img.mode == "1":
        img = img.convert("L")
    if img.mode == "L":
        return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
    rgb = np.asarray(img if img.mode == "RGB" else img.convert("RGB"), dtype=np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _orient(page: np.ndarray, orientation: int) -> np.ndarray:
    """Turn decoded pixels upright by their EXIF orientation (as PIL's exif_transpose)."""
    if orientation == 2:
        page = page[:, ::-1]
    elif orientation == 3:
        page = page[::-1, ::-1]
    elif orientation == 4:
        page = page[::-1]
    elif orientation == 5:
        page = page.swapaxes(0, 1)
    elif orientation == 6:
        return cv2.rotate(page, cv2.ROTATE_90_CLOCKWISE)
    elif orientation == 7:
        page = page.swapaxes(0, 1)[::-1, ::-1]
    elif orientation == 8:
        return cv2.rotate(page, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return np.ascontiguousarray(page)


# Deep (16-bit, 32-bit, float) pixels are stretched to 0-255 between these percentiles of
# the finite values, so one stray NaN, infinity or 1e30 cannot flatten the page to black.
STRETCH_PERCENTILES = (0.1, 99.9)
_STRETCH_SAMPLE = 1 << 20


def _stretch(arr: np.ndarray) -> np.ndarray:
    """Deep pixel values → uint8, robust to non-finite values and outliers.

    NaN becomes the median (paper, nearly always), ±inf the ends of the range; a page
    whose values are all non-finite is refused rather than read as blank.
    """
    step = max(1, arr.size // _STRETCH_SAMPLE)
    sample = arr.reshape(-1)[::step]
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        finite = arr[np.isfinite(arr)]
        if finite.size == 0:
            raise CorruptImage("The image has no usable pixel values (all are NaN or infinite).")
    lo, hi = (float(v) for v in np.percentile(finite, STRETCH_PERCENTILES))
    if not hi > lo:
        lo, hi = float(finite.min()), float(finite.max())
    if not hi > lo:
        return np.zeros(arr.shape, np.uint8)  # one value everywhere: nothing written
    middle = float(np.median(finite))
    out = np.nan_to_num(arr, nan=middle, posinf=hi, neginf=lo)
    # Scaled before the offset is taken: (hi - lo) may not fit in a float32.
    gain = 255.0 / (hi - lo)
    out = np.clip(out, lo, hi) * np.float32(gain) - np.float32(lo * gain)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------ headers, parsed once


@dataclass(frozen=True)
class Header:
    """What a file's header says, read without decoding pixels (and bounded in time)."""

    fmt: str
    width: int  # as stored, before any EXIF rotation
    height: int
    orientation: int = 1  # EXIF orientation (JPEG)

    @property
    def upright_size(self) -> tuple[int, int]:
        """(width, height) as displayed, after the EXIF rotation."""
        if self.orientation in {5, 6, 7, 8}:
            return self.height, self.width
        return self.width, self.height


# A real JPEG has a few dozen segments before its image data; more is junk (or an attack).
_MAX_JPEG_SEGMENTS = 4096
_MAX_FILL = 1024
_NOT_FILL = re.compile(b"[^\xff]")
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _damaged(fmt: str) -> CorruptImage:
    return CorruptImage(f"The {fmt.upper()} image is damaged or incomplete.")


def _jpeg_header(data: bytes) -> Header:
    """Walk the JPEG markers up to the image data: one jump per segment, never a byte scan.

    PIL's own parser skips junk between markers a byte at a time (200 MB of zeros behind
    JPEG magic took minutes); a marker that is not where the segment lengths put it means
    the file is damaged.
    """
    n = len(data)
    i = 2
    size: tuple[int, int] | None = None
    orientation = 1
    for _ in range(_MAX_JPEG_SEGMENTS):
        if i >= n or data[i] != 0xFF:
            break
        fill = _NOT_FILL.search(data, i, min(n, i + _MAX_FILL))  # 0xFF fill bytes
        if fill is None:
            break
        i = fill.start()
        marker = data[i]
        i += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # standalone markers
            continue
        if marker == 0xD9 or i + 2 > n:
            break
        length = int.from_bytes(data[i : i + 2], "big")
        if length < 2 or i + length > n:
            break
        segment = data[i + 2 : i + length]
        if marker in _SOF_MARKERS and len(segment) >= 6:
            size = (int.from_bytes(segment[3:5], "big"), int.from_bytes(segment[1:3], "big"))
        elif marker == 0xE1 and segment.startswith(b"Exif\x00\x00"):
            orientation = _exif_orientation(segment)
        elif marker == 0xDA:  # start of scan: the image data follows
            if size is None:
                break
            return Header("jpeg", size[0], size[1], orientation)
        i += length
    raise _damaged("jpeg")


def _exif_orientation(segment: bytes) -> int:
    """The EXIF orientation tag (1-8) of an APP1 segment; 1 when unreadable."""
    try:
        exif = Image.Exif()
        with _quiet_pil():
            exif.load(segment)
        value = int(exif.get(0x0112, 1))
    except Exception:  # a damaged EXIF block must not cost the picture
        return 1
    return value if 1 <= value <= 8 else 1


def _png_header(data: bytes) -> Header:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise _damaged("png")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return Header("png", width, height)


_PIL_FORMATS = {
    "jpeg": "JPEG",
    "png": "PNG",
    "tiff": "TIFF",
    "bmp": "BMP",
    "gif": "GIF",
    "webp": "WEBP",
}


@contextlib.contextmanager
def _quiet_pil() -> Iterator[None]:
    """PIL's warnings (corrupt EXIF, odd TIFF tags, ...) say nothing a user can act on
    and would print above the one line they get; a decompression-bomb warning becomes
    the error it is (our own pixel limit is checked before it could fire anyway)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _open_pil(data: bytes, fmt: str) -> Image.Image:
    """PIL's reader for this format only (never every plugin in turn)."""
    with _quiet_pil():
        return Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[fmt]])


def read_header(data: bytes, fmt: str | None = None) -> Header:
    """The format and size of an encoded image, without decoding its pixels.

    JPEG and PNG are parsed here (bounded: one step per segment); other formats by PIL's
    reader for that format alone. Raises an `ImageError` subclass.
    """
    fmt = fmt or sniff_format(data)
    if fmt is None:
        raise UnsupportedFormat(
            "This file is not a supported image (JPEG, PNG, WebP, BMP, TIFF or PDF)."
        )
    if fmt == "jpeg":
        return _jpeg_header(data)
    if fmt == "png":
        return _png_header(data)
    if fmt == "pdf":
        raise ValueError("read_header does not read PDFs")
    with _pil_errors(fmt):
        img = _open_pil(data, fmt)
        return Header(fmt, img.width, img.height)


class _pil_errors:
    """Turn what PIL raises on bad data into this module's one-sentence errors."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None or isinstance(exc, ImageError):
            return False
        if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
            raise ImageTooLarge("The image is too large to be read safely.") from exc
        if isinstance(exc, UnidentifiedImageError | OSError | SyntaxError | EOFError):
            raise _damaged(self.fmt) from exc
        if isinstance(exc, ValueError | IndexError | struct.error | ZeroDivisionError):
            raise _damaged(self.fmt) from exc
        return False


# ------------------------------------------------------------------ decoding


def _image_pages(
    data: bytes,
    fmt: str,
    header: Header | None,
    max_pixels: int,
    max_pages: int,
    first_only: bool,
    reduce: int,
) -> Iterator[np.ndarray]:
    """Pages of a raster image, decoded by PIL one at a time (TIFF frames; GIF: frame 1).

    PIL, not OpenCV, decodes: libpng and libjpeg print warnings straight onto stderr from
    OpenCV, and a truncated file is refused instead of half read. `reduce` (JPEG only)
    decodes at 1/2, 1/4 or 1/8 size through libjpeg's DCT scaling. `header` is this
    module's parse of a JPEG or PNG; other formats' headers are PIL's parse, here.
    """
    if header is not None:
        _check_pixels(header.width, header.height, max_pixels)
    with _pil_errors(fmt):
        img = _open_pil(data, fmt)
        _check_pixels(img.width, img.height, max_pixels)
        n_frames = int(getattr(img, "n_frames", 1)) if fmt == "tiff" and not first_only else 1
        if n_frames > max_pages:
            raise TooManyPages(f"The file has {n_frames} pages; at most {max_pages} can be read.")
    for index in range(n_frames):
        with _pil_errors(fmt), _quiet_pil():
            if index:
                img.seek(index)
                _check_pixels(img.width, img.height, max_pixels)
            elif reduce > 1 and fmt == "jpeg":
                img.draft(img.mode, (img.width // reduce, img.height // reduce))
            if index == 0 and header is not None and fmt == "jpeg":
                # The orientation is known from the header walk: no second EXIF parse.
                page = _orient(_to_uint8_array(img), header.orientation)
            else:
                page = _to_uint8_array(ImageOps.exif_transpose(img) if index == 0 else img)
        yield page


def _pdf_pages(
    data: bytes, max_pixels: int, max_pages: int, dpi: int, first_only: bool
) -> Iterator[np.ndarray]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except Exception as exc:
        if getattr(exc, "err_code", None) == _PDFIUM_ERR_PASSWORD:
            raise PasswordProtected(
                "The PDF file is password-protected: send it without the password."
            ) from exc
        raise CorruptImage("The PDF file is damaged or incomplete.") from exc
    try:
        n = len(pdf)
        if n == 0:
            raise CorruptImage("The PDF file has no pages.")
        if n > max_pages and not first_only:
            raise TooManyPages(f"The PDF has {n} pages; at most {max_pages} can be read.")
    except BaseException:
        pdf.close()
        raise
    return _render_pdf(pdf, 1 if first_only else n, min(max_pixels, PDF_MAX_PIXELS), dpi)


def _render_pdf(pdf: Any, count: int, max_pixels: int, dpi: int) -> Iterator[np.ndarray]:
    """Render pages one at a time, each scaled so it has at most `max_pixels` pixels."""
    try:
        for index in range(count):
            try:
                page = pdf[index]
            except Exception as exc:
                raise CorruptImage("The PDF file is damaged or incomplete.") from exc
            try:
                width, height = page.get_size()  # points, 1/72 inch
                scale = dpi / 72.0
                # Shrink the rendering rather than refuse a huge page (posters, plans).
                pixels = max(1.0, width * scale * height * scale)
                if pixels > max_pixels:
                    scale *= (max_pixels / pixels) ** 0.5 * 0.99
                bitmap = page.render(scale=scale, grayscale=False)
                rgb = bitmap.to_numpy()
                # pypdfium2 renders BGR(A) by default, which is what OpenCV wants.
                arr = np.array(rgb[:, :, :3] if rgb.ndim == 3 else rgb, np.uint8, order="C")
                del rgb, bitmap
            except ImageError:
                raise
            except Exception as exc:
                raise CorruptImage("The PDF file is damaged or incomplete.") from exc
            finally:
                page.close()
            yield arr
    finally:
        pdf.close()


def iter_pages(
    data: bytes | str | Path,
    *,
    max_pixels: int = MAX_PIXELS,
    max_pages: int = MAX_PAGES,
    pdf_dpi: int = PDF_DPI,
    max_bytes: int = MAX_BYTES,
    first_only: bool = False,
) -> Iterator[np.ndarray]:
    """The pages of an image or scan, decoded (PDF: rendered) one at a time, on demand.

    The checks that need no pixels (size of the file, format, header, page count) run
    before this returns; a page is decoded only when the iterator reaches it, so reading
    page 1 of a 20-page PDF renders one page, and a caller that drops each page after
    use holds one page in memory. `first_only` yields page 1 and ignores the page limit.
    """
    raw = _read_bytes(data, max_bytes)
    if not raw:
        raise CorruptImage("The file is empty.")
    fmt = sniff_format(raw)
    if fmt is None:
        raise UnsupportedFormat(
            "This file is not a supported image (JPEG, PNG, WebP, BMP, TIFF or PDF)."
        )
    if fmt == "pdf":
        return _pdf_pages(raw, max_pixels, max_pages, pdf_dpi, first_only)
    # JPEG and PNG headers are walked here; other formats' by PIL as it opens them: once.
    header = read_header(raw, fmt) if fmt in {"jpeg", "png"} else None
    pages = _image_pages(raw, fmt, header, max_pixels, max_pages, first_only, 1)
    # Run the generator to its first yield's checks now: errors belong to this call.
    first = next(pages)
    return itertools.chain([first], pages)


def decode_pages(
    data: bytes | str | Path,
    *,
    max_pixels: int = MAX_PIXELS,
    max_pages: int = MAX_PAGES,
    pdf_dpi: int = PDF_DPI,
    max_bytes: int = MAX_BYTES,
) -> list[np.ndarray]:
    """Every page of an image or scan as BGR (or grey) uint8 arrays, EXIF-rotated upright.

    JPEG, PNG, WebP, BMP, GIF and TIFF give one page (TIFF: one per frame), PDF one per
    page rendered at `pdf_dpi`. Raises an `ImageError` subclass for anything unusable.
    Holds every page at once: prefer `iter_pages` for long documents.
    """
    return list(
        iter_pages(
            data, max_pixels=max_pixels, max_pages=max_pages, pdf_dpi=pdf_dpi, max_bytes=max_bytes
        )
    )


def decode_image(
    data: bytes | str | Path,
    *,
    max_pixels: int = MAX_PIXELS,
    max_pages: int = MAX_PAGES,
    max_bytes: int = MAX_BYTES,
) -> np.ndarray:
    """The first page of `data` (see `iter_pages`); other pages are never decoded."""
    pages = iter_pages(
        data, max_pixels=max_pixels, max_pages=max_pages, max_bytes=max_bytes, first_only=True
    )
    return next(iter(pages))


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as displayed, from the header alone, when the format tells it."""
    try:
        return read_header(data).upright_size
    except (ImageError, ValueError):
        return None


def decode_for_reading(
    data: bytes, *, max_side: int, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES
) -> tuple[np.ndarray, float]:
    """First page, decoded small when the reader will downscale anyway: (image, scale).

    `scale` maps decoded pixels back to the original image (original = decoded × scale).
    JPEG decoding at 1/2, 1/4 or 1/8 size is several times faster than full decoding.
    The header is parsed once; each decoder pass is bounded by `max_pixels`.
    """
    raw = _read_bytes(data, max_bytes)
    fmt = sniff_format(raw) if raw else None
    if fmt == "jpeg":
        header = read_header(raw, fmt)
        _check_pixels(header.width, header.height, max_pixels)
        long_side = max(header.width, header.height)
        factor = next((f for f in (8, 4, 2) if long_side / f >= max_side), 1)
        page = next(_image_pages(raw, fmt, header, max_pixels, 1, True, factor))
        return page, long_side / max(page.shape[:2])
    return decode_image(raw, max_pixels=max_pixels, max_bytes=max_bytes), 1.0
