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


def test_annotate_gives_same_stems_their_own_pictures_and_never_overwrites(
    tmp_path, clear_digits, capsys
) -> None:
    """`a/x.jpg b/x.png` used to leave one picture; a picture already there was replaced."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "x.jpg", tmp_path / "b" / "x.png"
    first.write_bytes(cv2.imencode(".jpg", render("12", clear_digits))[1].tobytes())
    second.write_bytes(cv2.imencode(".png", render("34", clear_digits))[1].tobytes())
    out = tmp_path / "out"
    assert main(["read", str(first), str(second), "--annotate", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["x-2.jpg", "x.jpg"]
    pictures = {p.name: p.read_bytes() for p in out.iterdir()}
    assert pictures["x.jpg"] != pictures["x-2.jpg"]
    capsys.readouterr()
    # Again into the same folder: both readings printed, nothing replaced, exit 1.
    assert main(["read", str(first), str(second), "--annotate", str(out)]) == 1
    captured = capsys.readouterr()
    assert [line.split("\t")[1] for line in captured.out.splitlines()] == ["12", "34"]
    assert captured.err.count("already exists; not overwritten") == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == pictures
