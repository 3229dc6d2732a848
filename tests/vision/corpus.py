"""The bad-input corpus: about 140 files made at test time (no binary is committed).

Each case says what `DigitReader.read` must give (the number written, or the documented
`ImageError` subclass) and what `read_document` must give (every page's number, or an
error). Kinds: numbers in every container and pixel format, EXIF rotations, multi-page
TIFF and PDF, animated GIF, CMYK, 16-bit and float pixels (with NaN, inf, huge values),
huge real images, decompression-bomb headers and a real bomb, truncated files of every
format, password-protected and poster PDFs, junk behind magic bytes, empty, tiny, thin
and blank images.

`python -m tests.vision.corpus FOLDER` reads a written corpus in a fresh process and
writes FOLDER/results.json: each case's outcomes and seconds, the resident memory after
loading the model and its peak (see tests/vision/test_corpus.py).
"""

from __future__ import annotations

import io
import json
import struct
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from tests.vision.conftest import render
from tests.vision.pdfs import encrypted_pdf, pdf_of, poster_pdf

ERR = "error:"


@dataclass
class Case:
    """One file and what reading it must give.

    `read` and `document` list the acceptable outcomes: "text:<reading>" or
    "error:<ImageError subclass>"; `document` is "pages:<json list of readings>" or an
    error. An empty `document` means: the same as `read`, as one page.
    """

    name: str
    data: bytes = field(repr=False)
    read: tuple[str, ...]
    document: tuple[str, ...] = ()
    suffix: str = "bin"

    def expected_document(self) -> tuple[str, ...]:
        if self.document:
            return self.document
        return tuple(o if o.startswith(ERR) else "pages:" + json.dumps([o[5:]]) for o in self.read)


def text(value: str) -> str:
    return "text:" + value


def error(name: str) -> str:
    return ERR + name


def pages(*values: str) -> str:
    return "pages:" + json.dumps(list(values))


# ------------------------------------------------------------------ encoders


def _pil(img: np.ndarray) -> Image.Image:
    if img.ndim == 2:
        return Image.fromarray(img)
    return Image.fromarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def _save(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def _cv(img: np.ndarray, ext: str, params: list[int] | None = None) -> bytes:
    ok, enc = cv2.imencode(ext, img, params or [])
    if not ok:
        raise RuntimeError(f"cv2 cannot encode {ext}")
    return enc.tobytes()


def _grey(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int, *, depth: int = 8, colour: int = 2) -> bytes:
    """A PNG that is all header: IHDR with any size, a token IDAT, IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


def real_png_bomb(side: int) -> bytes:
    """A genuine `side`×`side` grey PNG of zeros: tiny file, `side`² bytes decoded."""
    row = b"\x00" * (side + 1)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
    )


def jpeg_header_only(width: int, height: int) -> bytes:
    """SOI, a baseline SOF0 for `width`×`height`, SOS, then a little entropy junk."""
    sof = struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"
    sos = b"\x01\x01\x00\x00\x3f\x00"
    return (
        b"\xff\xd8"
        + b"\xff\xc0"
        + struct.pack(">H", len(sof) + 2)
        + sof
        + b"\xff\xda"
        + struct.pack(">H", len(sos) + 2)
        + sos
        + bytes(64)
        + b"\xff\xd9"
    )


def gif_header_only(width: int, height: int) -> bytes:
    """GIF89a with a logical screen and one image descriptor of `width`×`height`."""
    screen = struct.pack("<HHBBB", width, height, 0, 0, 0)
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return b"GIF89a" + screen + descriptor + b"\x02\x02\x44\x01\x00\x3b"


def bmp_header_only(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 16, 0, 0, 54) + info + bytes(16)


def tiff_header_only(width: int, height: int) -> bytes:
    """A little-endian TIFF whose one IFD claims `width`×`height` 8-bit grey pixels."""
    entries = [
        (256, 4, 1, width),  # ImageWidth, LONG
        (257, 4, 1, height),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # Photometric: black is zero
        (273, 4, 1, 8 + 2 + 12 * 8 + 4),  # StripOffsets: just past the IFD
        (278, 4, 1, height),  # RowsPerStrip
        (279, 4, 1, width * height % 2**32),  # StripByteCounts
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHII", tag, kind, count, value)
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + bytes(256)


def tiff_ifd_loop() -> bytes:
    """Two 4×4 TIFF pages whose IFDs point at each other: the page walk must end."""
    size = 2 + 8 * 12 + 4
    first, second, pixels = 8, 8 + size, 8 + 2 * size

    def ifd(next_offset: int) -> bytes:
        # width, height, 8 bits, uncompressed, black is zero, strip at, rows, bytes
        entries = [(256, 4, 1, 4), (257, 4, 1, 4), (258, 3, 1, 8), (259, 3, 1, 1)]
        entries += [(262, 3, 1, 1), (273, 4, 1, pixels), (278, 4, 1, 4), (279, 4, 1, 16)]
        body = b"".join(struct.pack("<HHII", *entry) for entry in entries)
        return struct.pack("<H", len(entries)) + body + struct.pack("<I", next_offset)

    return b"II*\x00" + struct.pack("<I", first) + ifd(second) + ifd(first) + b"\xff" * 16


def webp_header_only(width: int, height: int) -> bytes:
    """RIFF/WEBP with a VP8X chunk announcing a `width`×`height` canvas, and nothing else."""
    vp8x = (
        b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    )
    chunk = b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


# EXIF orientation -> how PIL's exif_transpose turns the stored pixels upright; stored
# pixels are made with the inverse.
_INVERSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def _exif_jpeg(img: np.ndarray, orientation: int) -> bytes:
    pil = _pil(img)
    if orientation in _INVERSE:
        pil = pil.transpose(_INVERSE[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(pil, "JPEG", quality=92, exif=exif.tobytes())


# ------------------------------------------------------------------ the corpus


def build(digits: dict[int, np.ndarray]) -> list[Case]:
    """Every case, from one clear MNIST test digit per class."""
    cases: list[Case] = []

    def add(name: str, data: bytes, read: str | tuple[str, ...], document=(), suffix="bin"):
        read = (read,) if isinstance(read, str) else read
        document = (document,) if isinstance(document, str) else document
        cases.append(Case(name, data, read, document, suffix))

    def page(number: str, **kw) -> np.ndarray:
        return render(number, digits, **kw)

    # --- numbers in every container and pixel format ---------------------------------
    formats: list[tuple[str, str, Callable[[np.ndarray], bytes]]] = [
        ("jpeg-q92", "jpg", lambda im: _cv(im, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 92])),
        ("jpeg-q40", "jpg", lambda im: _cv(im, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 40])),
        ("jpeg-grey", "jpg", lambda im: _cv(_grey(im), ".jpg")),
        ("jpeg-progressive", "jpg", lambda im: _save(_pil(im), "JPEG", progressive=True)),
        ("jpeg-444", "jpg", lambda im: _save(_pil(im), "JPEG", subsampling=0, quality=95)),
        ("jpeg-cmyk", "jpg", lambda im: _save(_pil(im).convert("CMYK"), "JPEG", quality=95)),
        ("png-rgb", "png", lambda im: _cv(im, ".png")),
        ("png-grey", "png", lambda im: _cv(_grey(im), ".png")),
        ("png-palette", "png", lambda im: _save(_pil(im).convert("P"), "PNG")),
        (
            "png-1bit",
            "png",
            lambda im: _save(_pil(_grey(im)).point(lambda v: 255 * (v > 128)).convert("1"), "PNG"),
        ),
        ("png-la", "png", lambda im: _save(_pil(_grey(im)).convert("LA"), "PNG")),
        ("png-rgba-opaque", "png", lambda im: _save(_pil(im).convert("RGBA"), "PNG")),
        ("png-ink-on-transparent", "png", lambda im: _ink_on_transparent(im)),
        ("png-16bit-grey", "png", lambda im: _cv(_grey(im).astype(np.uint16) * 257, ".png")),
        ("png-16bit-rgb", "png", lambda im: _cv(im.astype(np.uint16) * 257, ".png")),
        ("bmp-24", "bmp", lambda im: _cv(im, ".bmp")),
        ("bmp-grey", "bmp", lambda im: _save(_pil(_grey(im)), "BMP")),
        ("gif", "gif", lambda im: _save(_pil(im), "GIF")),
        ("webp-lossy", "webp", lambda im: _save(_pil(im), "WEBP", quality=60)),
        ("webp-lossless", "webp", lambda im: _save(_pil(im), "WEBP", lossless=True)),
        ("tiff-raw", "tif", lambda im: _save(_pil(im), "TIFF")),
        ("tiff-lzw", "tif", lambda im: _save(_pil(im), "TIFF", compression="tiff_lzw")),
        (
            "tiff-deflate",
            "tif",
            lambda im: _save(_pil(im), "TIFF", compression="tiff_adobe_deflate"),
        ),
        ("tiff-packbits", "tif", lambda im: _save(_pil(_grey(im)), "TIFF", compression="packbits")),
        ("tiff-jpeg", "tif", lambda im: _save(_pil(im), "TIFF", compression="jpeg")),
        ("tiff-cmyk", "tif", lambda im: _save(_pil(im).convert("CMYK"), "TIFF")),
        (
            "tiff-16bit",
            "tif",
            lambda im: _save(Image.fromarray(_grey(im).astype(np.uint16) * 257), "TIFF"),
        ),
        ("tiff-float", "tif", lambda im: _float_tiff(_grey(im).astype(np.float32) / 255.0)),
    ]
    numbers = ["42", "907", "3581", "26", "714", "5093", "68", "1247", "39", "850"]
    for i, (name, suffix, encode) in enumerate(formats):
        number = numbers[i % len(numbers)]
        add(f"{name}-{number}", encode(page(number)), text(number), suffix=suffix)
    add("png-two-lines", _cv(page("12\n345"), ".png"), text("12\n345"), suffix="png")

    # --- float pixels with one bad value: the number, not a blank page ---------------
    for label, bad in (("nan", np.nan), ("inf", np.inf), ("-inf", -np.inf), ("1e30", 1e30)):
        arr = _grey(page("61")).astype(np.float32) / 255.0
        arr[0, 0] = bad
        add(f"tiff-float-{label}-61", _float_tiff(arr), text("61"), suffix="tif")
    add(
        "tiff-float-all-nan",
        _float_tiff(np.full((40, 60), np.nan, np.float32)),
        error("CorruptImage"),
        suffix="tif",
    )

    # --- EXIF rotations ---------------------------------------------------------------
    for orientation in range(1, 9):
        number = numbers[orientation]
        add(
            f"jpeg-exif-{orientation}-{number}",
            _exif_jpeg(page(number), orientation),
            text(number),
            suffix="jpg",
        )
    broken_exif = Image.Exif()
    broken_exif[0x0112] = 99  # out of range: ignored, the picture is read as stored
    add(
        "jpeg-exif-99-52",
        _save(_pil(page("52")), "JPEG", exif=broken_exif.tobytes()),
        text("52"),
        suffix="jpg",
    )

    # --- several pages ----------------------------------------------------------------
    trio = [_pil(page(n)) for n in ("31", "475", "8")]
    add(
        "tiff-3-pages",
        _save(trio[0], "TIFF", save_all=True, append_images=trio[1:]),
        text("31"),
        pages("31", "475", "8"),
        "tif",
    )
    blanks = [Image.new("L", (40, 30), 255) for _ in range(25)]
    add(
        "tiff-25-pages",
        _save(blanks[0], "TIFF", save_all=True, append_images=blanks[1:]),
        text(""),
        error("TooManyPages"),
        "tif",
    )
    frames = [_pil(page(n)).convert("P") for n in ("64", "19")]
    add(
        "gif-animated",
        _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0),
        text("64"),
        suffix="gif",
    )
    add("pdf-1-page", pdf_of([trio[1]]), text("475"), suffix="pdf")
    add("pdf-3-pages", pdf_of(trio), text("31"), pages("31", "475", "8"), "pdf")
    thirty = [_pil(page("7"))] + [Image.new("L", (64, 48), 255) for _ in range(29)]
    add("pdf-30-pages", pdf_of(thirty, resolution=50), text("7"), error("TooManyPages"), "pdf")
    add("pdf-poster-21-pages", poster_pdf(21), text(""), error("TooManyPages"), "pdf")
    add("pdf-poster-page-93", pdf_of([_pil(page("93"))], resolution=10), text("93"), suffix="pdf")
    add("pdf-password", encrypted_pdf(), error("PasswordProtected"), suffix="pdf")
    whole = pdf_of([trio[0]])
    for cut in (0.1, 0.5, 0.9):
        add(
            f"pdf-truncated-{cut}",
            whole[: int(len(whole) * cut)],
            (error("CorruptImage"), text("31")),
            suffix="pdf",
        )
    add(
        "pdf-no-pages",
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n",
        error("CorruptImage"),
        suffix="pdf",
    )

    # --- huge real images ---------------------------------------------------------------
    big = cv2.resize(page("2804"), (6000, 4500), interpolation=cv2.INTER_CUBIC)
    add(
        "jpeg-27mp-2804",
        _cv(big, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 85]),
        text("2804"),
        suffix="jpg",
    )
    add(
        "png-27mp-grey-2804",
        _cv(_grey(big), ".png", [cv2.IMWRITE_PNG_COMPRESSION, 1]),
        text("2804"),
        suffix="png",
    )
    del big
    bigger = np.full((6000, 8000), 235, np.uint8)
    add("jpeg-48mp-over-the-limit", _cv(bigger, ".jpg"), error("ImageTooLarge"), suffix="jpg")
    add(
        "png-48mp-over-the-limit",
        _cv(bigger, ".png", [cv2.IMWRITE_PNG_COMPRESSION, 1]),
        error("ImageTooLarge"),
        suffix="png",
    )
    del bigger

    # --- decompression bombs (headers and one real) --------------------------------------
    add("bomb-png-30000", png_header_only(30000, 30000), error("ImageTooLarge"), suffix="png")
    add("bomb-png-1x40m", png_header_only(1, 40_000_001), error("ImageTooLarge"), suffix="png")
    add("bomb-png-max", png_header_only(2**31 - 1, 2**31 - 1), error("ImageTooLarge"), suffix="png")
    add("bomb-png-real-9000", real_png_bomb(9000), error("ImageTooLarge"), suffix="png")
    add("bomb-jpeg-65000", jpeg_header_only(65000, 65000), error("ImageTooLarge"), suffix="jpg")
    add("bomb-gif-65535", gif_header_only(65535, 65535), error("ImageTooLarge"), suffix="gif")
    add("bomb-bmp-50000", bmp_header_only(50000, 50000), error("ImageTooLarge"), suffix="bmp")
    add("bomb-tiff-100000", tiff_header_only(100000, 100000), error("ImageTooLarge"), suffix="tif")
    add(
        "bomb-webp-16383",
        webp_header_only(16383, 16383),
        (error("ImageTooLarge"), error("CorruptImage")),
        suffix="webp",
    )
    add("png-zero-size", png_header_only(0, 0), error("CorruptImage"), suffix="png")
    add("jpeg-zero-height", jpeg_header_only(100, 0), error("CorruptImage"), suffix="jpg")

    # --- truncated files ------------------------------------------------------------------
    sample = page("83")
    whole_files = {
        "jpeg": _cv(sample, ".jpg"),
        "png": _cv(sample, ".png"),
        "gif": _save(_pil(sample), "GIF"),
        "tiff": _save(_pil(sample), "TIFF"),
        "webp": _save(_pil(sample), "WEBP"),
        "bmp": _cv(sample, ".bmp"),
    }
    for fmt, data in whole_files.items():
        for cut in (0.05, 0.5, 0.9, 0.99):
            add(
                f"{fmt}-truncated-{cut}",
                data[: int(len(data) * cut)],
                error("CorruptImage"),
                suffix=fmt,
            )
    add("jpeg-no-eoi", whole_files["jpeg"][:-2], (text("83"), error("CorruptImage")), suffix="jpg")
    # Zeros over the data of the bottom rows (blank paper): libjpeg decodes them as valid
    # codes, so the damage cannot be detected, only kept off the writing.
    damaged = bytearray(whole_files["jpeg"])
    start = int(len(damaged) * 0.85)
    damaged[start : start + 200] = bytes(200)
    add(
        "jpeg-zeros-near-the-end", bytes(damaged), (text("83"), error("CorruptImage")), suffix="jpg"
    )
    damaged_png = bytearray(whole_files["png"])
    damaged_png[len(damaged_png) // 2] ^= 0xFF
    add("png-bad-crc", bytes(damaged_png), error("CorruptImage"), suffix="png")

    # --- junk, empty, not images ----------------------------------------------------------
    rng = np.random.default_rng(7)
    add("empty", b"", error("CorruptImage"))
    add("one-byte", b"\xff", error("UnsupportedFormat"))
    add(
        "text",
        b"hello, this is a shopping list\n1 milk\n2 eggs\n",
        error("UnsupportedFormat"),
        suffix="txt",
    )
    add(
        "html",
        b"<!doctype html><html><body><img src=x></body></html>",
        error("UnsupportedFormat"),
        suffix="html",
    )
    add("zip", b"PK\x03\x04" + bytes(200), error("UnsupportedFormat"), suffix="zip")
    add("random", b"\x00" + rng.bytes(10_000), error("UnsupportedFormat"))
    add("zeros-1mb", bytes(1_000_000), error("UnsupportedFormat"))
    add(
        "jpeg-magic-5mb-zeros",
        b"\xff\xd8\xff" + bytes(5_000_000),
        error("CorruptImage"),
        suffix="jpg",
    )
    add(
        "jpeg-magic-5mb-ff",
        b"\xff\xd8\xff" + b"\xff" * 5_000_000,
        error("CorruptImage"),
        suffix="jpg",
    )
    add(
        "jpeg-magic-random",
        b"\xff\xd8\xff\xe0" + rng.bytes(50_000),
        error("CorruptImage"),
        suffix="jpg",
    )
    add(
        "png-magic-junk",
        b"\x89PNG\r\n\x1a\n" + rng.bytes(5000),
        error("CorruptImage"),
        suffix="png",
    )
    add("pdf-magic-junk", b"%PDF-1.7\n" + rng.bytes(5000), error("CorruptImage"), suffix="pdf")
    add("gif-magic-only", b"GIF89a", error("CorruptImage"), suffix="gif")
    add("tiff-magic-junk", b"II*\x00" + rng.bytes(3000), error("CorruptImage"), suffix="tif")
    add("bmp-magic-junk", b"BM" + rng.bytes(3000), error("CorruptImage"), suffix="bmp")
    add(
        "webp-magic-junk",
        b"RIFF\x00\x10\x00\x00WEBPVP8 " + rng.bytes(3000),
        error("CorruptImage"),
        suffix="webp",
    )
    add(
        "over-the-byte-limit",
        b"\xff\xd8\xff" + bytes(50_000_000),
        error("FileTooLarge"),
        suffix="jpg",
    )

    # --- tiny, thin, blank --------------------------------------------------------------------
    for w, h in ((1, 1), (2, 2), (3, 3), (5, 5), (9, 4)):
        add(
            f"png-tiny-{w}x{h}", _cv(np.full((h, w), 255, np.uint8), ".png"), text(""), suffix="png"
        )
    add("jpeg-tiny-1x1", _cv(np.zeros((1, 1, 3), np.uint8), ".jpg"), text(""), suffix="jpg")
    add("gif-tiny-1x1", _save(Image.new("P", (1, 1)), "GIF"), text(""), suffix="gif")
    add("bmp-tiny-1x1", _save(Image.new("RGB", (1, 1)), "BMP"), text(""), suffix="bmp")
    add("tiff-tiny-1x1", _save(Image.new("L", (1, 1)), "TIFF"), text(""), suffix="tif")
    for w, h in ((800, 1), (1, 800), (20000, 20), (4000, 5), (5, 4000), (30000, 2)):
        strip = np.full((h, w), 200, np.uint8)
        strip[:, ::9] = 20
        add(f"png-thin-{w}x{h}", _cv(strip, ".png"), text(""), suffix="png")
    add(
        "jpeg-thin-3000x8",
        _cv(np.full((8, 3000, 3), 128, np.uint8), ".jpg"),
        text(""),
        suffix="jpg",
    )
    add(
        "jpeg-blank-white",
        _cv(np.full((480, 640, 3), 245, np.uint8), ".jpg"),
        text(""),
        suffix="jpg",
    )
    add("png-blank-black", _cv(np.zeros((480, 640), np.uint8), ".png"), text(""), suffix="png")
    add("png-blank-grey", _cv(np.full((480, 640), 128, np.uint8), ".png"), text(""), suffix="png")
    gradient = np.tile(np.linspace(0, 255, 640, dtype=np.float32), (480, 1)).astype(np.uint8)
    add("png-gradient", _cv(gradient, ".png"), text(""), suffix="png")
    add(
        "png-transparent",
        _save(Image.new("RGBA", (300, 200), (0, 0, 0, 0)), "PNG"),
        text(""),
        suffix="png",
    )
    add("tiff-ifd-loop", tiff_ifd_loop(), text(""), pages("", ""), "tif")
    add("tiff-float-flat", _float_tiff(np.full((50, 50), 3.0, np.float32)), text(""), suffix="tif")
    return cases


def _ink_on_transparent(img: np.ndarray) -> bytes:
    grey = _grey(img)
    alpha = (255 - grey.astype(np.int32)).clip(0, 255).astype(np.uint8)
    rgba = np.dstack([np.zeros_like(grey)] * 3 + [alpha])
    return _save(Image.fromarray(rgba, "RGBA"), "PNG")


def _float_tiff(arr: np.ndarray) -> bytes:
    return _save(Image.fromarray(arr.astype(np.float32), mode="F"), "TIFF")


def glyphs(classifier: object, images: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """Per class, the MNIST test digit `classifier` is surest of among the first 2000 (the
    same choice as tests/vision/conftest.py's `clear_digits`, so the same readings)."""
    probs = classifier.classify(images[:2000])  # type: ignore[attr-defined]
    truth = np.asarray(labels[:2000]).astype(int)
    out = {}
    for label in range(10):
        right = np.nonzero((truth == label) & (probs.argmax(1) == label))[0]
        out[label] = images[right[np.argmax(probs[right, label])]]
    return out


# ------------------------------------------------------------------ writing and reading


def write(cases: list[Case], folder: Path) -> Path:
    """The files and a manifest (name, file, expected outcomes) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = []
    for index, case in enumerate(cases):
        file = folder / f"{index:03d}-{case.name}.{case.suffix}"
        file.write_bytes(case.data)
        manifest.append(
            {
                "name": case.name,
                "file": file.name,
                "read": list(case.read),
                "document": list(case.expected_document()),
            }
        )
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1))
    return path


def outcome_of(call: Callable[[], object]) -> tuple[str, float]:
    """("text:..." | "pages:[...]" | "error:Class" | "crash:Class: message", seconds)."""
    from vision.decode import ImageError

    start = time.perf_counter()
    try:
        result = call()
    except ImageError as exc:
        return error(type(exc).__name__), time.perf_counter() - start
    except Exception as exc:  # what the corpus exists to catch
        return f"crash:{type(exc).__name__}: {exc}", time.perf_counter() - start
    seconds = time.perf_counter() - start
    if isinstance(result, list):
        return pages(*(r.text for r in result)), seconds
    return text(result.text), seconds  # type: ignore[attr-defined]


def _memory_kb(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field_name} not in /proc/self/status")


def run(folder: Path) -> dict:
    """Read every case of a written corpus with one loaded reader (in this process)."""
    from vision.reader import DigitReader

    reader = DigitReader.load()
    reader.read(np.full((100, 100), 255, np.uint8))  # warm up
    loaded_kb = _memory_kb("VmRSS")
    results = []
    for entry in json.loads((folder / "manifest.json").read_text()):
        data = (folder / entry["file"]).read_bytes()
        read, read_s = outcome_of(lambda data=data: reader.read(data))
        document, document_s = outcome_of(
            lambda data=data: [r for r, _ in reader.read_document(data)]
        )
        del data
        results.append(
            {
                **entry,
                "got_read": read,
                "got_document": document,
                "read_s": read_s,
                "document_s": document_s,
                "peak_kb": _memory_kb("VmHWM"),
            }
        )
    return {"loaded_kb": loaded_kb, "peak_kb": _memory_kb("VmHWM"), "cases": results}


if __name__ == "__main__":
    target = Path(sys.argv[1])
    report = run(target)
    (target / "results.json").write_text(json.dumps(report, indent=1))


__all__ = ["Case", "build", "outcome_of", "run", "write"]
