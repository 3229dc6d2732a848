"""`digits read`: pages, annotations and errors, run through the dispatcher."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from digits.cli import main
from tests.vision.conftest import render
from tests.vision.pdfs import pdf_of


def _pil(bgr: np.ndarray) -> Image.Image:
    return Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def test_all_pages_with_annotate_renders_each_pdf_page_once(
    tmp_path, clear_digits, monkeypatch, capsys
) -> None:
    """`--all-pages --annotate` used to render the whole PDF again for every page."""
    from tests.vision.test_decode import _count_renders

    texts = ["12", "345", "67"]
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(pdf_of([_pil(render(t, clear_digits)) for t in texts], resolution=150))
    sizes = _count_renders(monkeypatch)
    out_dir = tmp_path / "annotated"
    assert main(["read", str(pdf), "--all-pages", "--annotate", str(out_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[1] for line in lines] == texts
    assert [line.split("\t")[0] for line in lines] == [f"{pdf}#{i}" for i in (1, 2, 3)]
    assert len(sizes) == 3
    assert sorted(p.name for p in out_dir.iterdir()) == [f"scan-p{i}.jpg" for i in (1, 2, 3)]
