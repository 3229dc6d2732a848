"""Decoding: every supported container, EXIF orientation, and each documented error."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from vision.decode import (
    CorruptImage,
    ImageError,
    ImageTooLarge,
    TooManyPages,
    UnsupportedFormat,
    decode_image,
    decode_pages,
)


def _pil_bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _picture() -> Image.Image:
    arr = np.full((40, 60, 3), 255, np.uint8)
    arr[10:30, 5:15] = (0, 0, 255)  # a red block on the left (RGB)
    return Image.fromarray(arr)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
def test_formats_decode_to_bgr(fmt: str) -> None:
    page = decode_image(_pil_bytes(_picture(), fmt))
    assert page.shape[:2] == (40, 60) and page.dtype == np.uint8
    b, _g, r = page[20, 10][:3] if page.ndim == 3 else (page[20, 10],) * 3
    assert b > 150 and r < 100  # PIL's blue (RGB 0,0,255) is BGR channel 0


def test_grey_png_stays_grey() -> None:
    page = decode_image(_pil_bytes(Image.new("L", (30, 20), 128), "PNG"))
    assert page.shape == (20, 30)


def test_exif_orientation_is_applied() -> None:
    img = _picture()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    page = decode_image(_pil_bytes(img, "JPEG", exif=exif.tobytes()))
    assert page.shape[:2] == (60, 40)


def test_multipage_tiff_gives_every_page() -> None:
    pages = [Image.new("L", (20, 10), v) for v in (0, 128, 255)]
    data = _pil_bytes(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    out = decode_pages(data)
    assert [int(p.mean()) for p in out] == [0, 128, 255]
    with pytest.raises(TooManyPages):
        decode_pages(data, max_pages=2)


def test_pdf_pages_are_rendered() -> None:
    pages = [Image.new("RGB", (200, 100), (255, 255, 255)) for _ in range(2)]
    data = _pil_bytes(pages[0], "PDF", save_all=True, append_images=pages[1:], resolution=50)
    out = decode_pages(data)
    assert len(out) == 2
    assert out[0].shape[1] > 400  # 4 in at 150 dpi
    with pytest.raises(TooManyPages):
        decode_pages(data, max_pages=1)


def test_zero_bytes() -> None:
    with pytest.raises(CorruptImage, match="empty"):
        decode_image(b"")


def test_text_file() -> None:
    with pytest.raises(UnsupportedFormat):
        decode_image(b"hello, this is not an image\n")


def test_malformed_jpeg() -> None:
    with pytest.raises(CorruptImage):
        decode_image(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)


def test_truncated_png() -> None:
    data = _pil_bytes(
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)), "PNG"
    )
    with pytest.raises(CorruptImage):
        decode_image(data[: len(data) // 2])


def test_truncated_pdf() -> None:
    data = _pil_bytes(Image.new("RGB", (50, 50), (255, 255, 255)), "PDF")
    with pytest.raises(CorruptImage):
        decode_pages(data[:60])


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + b"\x00" * 64
    )


def test_decompression_bomb_header() -> None:
    with pytest.raises(ImageTooLarge):
        decode_image(_png_header(30000, 30000))


def test_pixel_limit_is_configurable() -> None:
    data = cv2.imencode(".png", np.zeros((100, 100), np.uint8))[1].tobytes()
    with pytest.raises(ImageTooLarge):
        decode_image(data, max_pixels=5000)


def test_errors_are_value_errors_with_one_sentence() -> None:
    with pytest.raises(ImageError) as info:
        decode_image(b"GIF89a-not-really")
    assert isinstance(info.value, ValueError)
    assert str(info.value).endswith(".")


def test_file_over_the_byte_limit_is_refused_before_reading(tmp_path) -> None:
    from vision.decode import FileTooLarge, read_file

    big = tmp_path / "big.jpg"
    with open(big, "wb") as handle:
        handle.truncate(3_000_000)  # sparse: the size is known without writing it
    with pytest.raises(FileTooLarge, match="too large"):
        decode_image(big, max_bytes=1_000_000)
    with pytest.raises(FileTooLarge):
        read_file(big, 1_000_000)
    with pytest.raises(FileTooLarge):
        decode_image(b"\xff\xd8\xff" + bytes(2000), max_bytes=1000)


def test_a_device_without_a_size_is_read_only_up_to_the_limit() -> None:
    """/dev/zero reports size 0 and never ends: the read stops one byte past the limit."""
    from vision.decode import FileTooLarge, read_file

    with pytest.raises(FileTooLarge):
        read_file("/dev/zero", 5_000_000)


def test_junk_behind_jpeg_magic_is_refused_in_one_pass() -> None:
    """PIL scans junk between markers a byte at a time (minutes for 200 MB); the header
    walk refuses a marker that is not where it should be, at once."""
    import time

    for junk in (bytes(20_000_000), b"\xff" * 20_000_000, b"\xff\xd8" * 10_000_000):
        start = time.perf_counter()
        with pytest.raises(CorruptImage):
            decode_image(b"\xff\xd8\xff" + junk)
        assert time.perf_counter() - start < 1.0


def test_header_is_read_from_markers_with_exif_orientation() -> None:
    from vision.decode import read_header

    exif = Image.Exif()
    exif[0x0112] = 8
    data = _pil_bytes(_picture(), "JPEG", exif=exif.tobytes())
    header = read_header(data)
    assert (header.fmt, header.width, header.height, header.orientation) == ("jpeg", 60, 40, 8)
    assert header.upright_size == (40, 60)
    assert decode_image(data).shape[:2] == (60, 40)


def _float_tiff(arr: np.ndarray) -> bytes:
    return _pil_bytes(Image.fromarray(arr.astype(np.float32), mode="F"), "TIFF")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e30, -1e30, 3.4e38])
def test_float_tiff_with_one_bad_pixel_keeps_its_picture(bad: float) -> None:
    """One NaN, infinity or huge value used to stretch the page to one grey: read as ''."""
    arr = np.full((60, 80), 0.9, np.float32)
    arr[20:40, 30:50] = 0.1  # dark ink
    arr[0, 0] = bad
    page = decode_image(_float_tiff(arr))
    assert page[30, 40] < 30 and page[50, 10] > 225


def test_float_tiff_of_only_nan_is_refused() -> None:
    with pytest.raises(CorruptImage, match="NaN"):
        decode_image(_float_tiff(np.full((10, 10), np.nan)))


def test_sixteen_bit_png_is_stretched() -> None:
    arr = np.full((40, 40), 60000, np.uint16)
    arr[10:30, 10:30] = 1000
    page = decode_image(cv2.imencode(".png", arr)[1].tobytes())
    assert page.dtype == np.uint8 and page[20, 20] < 10 and page[2, 2] > 245


def test_password_protected_pdf_says_so() -> None:
    from tests.vision.pdfs import encrypted_pdf
    from vision.decode import PasswordProtected

    with pytest.raises(PasswordProtected, match="password-protected"):
        decode_image(encrypted_pdf())


def _count_renders(monkeypatch) -> list[tuple[int, int]]:
    import pypdfium2 as pdfium

    sizes: list[tuple[int, int]] = []
    original = pdfium.PdfPage.render

    def render(self, *args, **kwargs):
        bitmap = original(self, *args, **kwargs)
        sizes.append((bitmap.width, bitmap.height))
        return bitmap

    monkeypatch.setattr(pdfium.PdfPage, "render", render)
    return sizes


def test_first_page_of_a_poster_pdf_renders_one_capped_page(monkeypatch) -> None:
    """Twenty 14400-pt pages used to be rendered at 40 MP each (3 GB) to read page 1."""
    from tests.vision.pdfs import poster_pdf
    from vision.decode import PDF_MAX_PIXELS, decode_for_reading, iter_pages

    data = poster_pdf(20)
    sizes = _count_renders(monkeypatch)
    page = decode_image(data)
    assert len(sizes) == 1 and sizes[0][0] * sizes[0][1] <= PDF_MAX_PIXELS
    assert page.shape[0] * page.shape[1] <= PDF_MAX_PIXELS
    decode_for_reading(data, max_side=800)
    assert len(sizes) == 2
    with pytest.raises(TooManyPages):
        iter_pages(data, max_pages=5)  # refused from the page count, before any rendering
    assert len(sizes) == 2
    pages = iter_pages(data)
    assert len(sizes) == 2  # nothing rendered until a page is asked for
    next(pages)
    assert len(sizes) == 3
