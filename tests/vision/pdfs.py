"""PDFs made at test time: encrypted, many huge pages (no binary is committed)."""

from __future__ import annotations

import io

from PIL import Image


def encrypted_pdf() -> bytes:
    """A one-page PDF under the standard security handler with an unknown user password."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        b"<< /Filter /Standard /V 1 /R 2 /P -4 /O <%s> /U <%s> >>" % (b"ab" * 32, b"cd" * 32),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    ident = b"<" + b"01" * 16 + b">"
    out += b"trailer\n<< /Root 1 0 R /Size %d /Encrypt 4 0 R /ID [%s %s] >>\n" % (
        len(objects) + 1,
        ident,
        ident,
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def pdf_of(pages: list[Image.Image], resolution: float = 150.0) -> bytes:
    """A PDF with one page per picture, `resolution` pixels per inch of page."""
    buf = io.BytesIO()
    pages[0].save(buf, "PDF", save_all=True, append_images=pages[1:], resolution=resolution)
    return buf.getvalue()


def poster_pdf(pages: int = 20) -> bytes:
    """`pages` pages of 14400 × 14400 pt (200 in, PDF's largest) from a few KB of file."""
    blank = [Image.new("L", (100, 100), 255) for _ in range(pages)]
    return pdf_of(blank, resolution=0.5)
