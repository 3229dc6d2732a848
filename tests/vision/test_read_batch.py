"""`digits read --jobs N`: batch reading in input order, resumable, past bad files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import pytest
from PIL import Image

from digits.cli import main
from digits.commands.read_batch import Task, load_done, plan
from tests.vision.conftest import render

NUMBERS = ["250", "61", "4072", "315", "98", "7"]


@pytest.fixture(scope="module")
def scans(tmp_path_factory, clear_digits) -> tuple[Path, list[str]]:
    """A folder of numbered scans (one in a subfolder), a two-page PDF and a text file."""
    root = tmp_path_factory.mktemp("scans")
    (root / "sub").mkdir()
    names = []
    for i, text in enumerate(NUMBERS):
        folder = root / "sub" if i == 4 else root
        path = folder / f"s{i}.png"
        # The first one large, so that it finishes after the ones behind it.
        size, height = ((2400, 1800), 200) if i == 0 else ((640, 480), 60)
        cv2.imwrite(str(path), render(text, clear_digits, size=size, height=height))
        names.append(str(path))
    pages = [
        Image.fromarray(cv2.cvtColor(render(t, clear_digits), cv2.COLOR_BGR2RGB))
        for t in ("83", "506")
    ]
    buf = io.BytesIO()
    pages[0].save(buf, "PDF", save_all=True, append_images=pages[1:], resolution=150)
    (root / "t.pdf").write_bytes(buf.getvalue())
    (root / "notes.txt").write_text("not a scan")
    return root, names


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _expected(root: Path, names: list[str]) -> list[tuple[str, str]]:
    """(file, text) in input order: the folder's files sorted, the subfolder's in place."""
    pairs = dict(zip(names, NUMBERS, strict=True))
    pairs[f"{root / 't.pdf'}#1"] = "83"
    pairs[f"{root / 't.pdf'}#2"] = "506"
    return sorted(pairs.items())


@pytest.mark.slow
def test_jobs_2_reads_a_folder_and_a_pdf_page_by_page_in_input_order(scans, capsys) -> None:
    root, names = scans
    assert main(["read", str(root), "--jobs", "2", "--all-pages"]) == 0
    records = _lines(capsys.readouterr().out)
    assert [(r["file"], r["text"]) for r in records] == _expected(root, names)


def test_plan_splits_pdfs_into_pages_and_skips_done(scans) -> None:
    root, names = scans
    pdf = root / "t.pdf"
    tasks = list(plan([root], all_pages=True, done={names[1], f"{pdf}#2"}))
    assert all(isinstance(t, Task) for t in tasks)
    assert [t.name for t in tasks] == sorted({*names, f"{pdf}#1"} - {names[1]})
    assert [t.page for t in tasks if t.path == str(pdf)] == [0]
    # Without --all-pages a PDF is one file (its first page), as in `digits read`.
    assert [t.page for t in plan([pdf], all_pages=False)] == [None]


def test_skip_done_reads_only_what_is_missing_and_appends(scans, tmp_path, capsys) -> None:
    _, names = scans
    out = tmp_path / "out.jsonl"
    earlier = [
        {"file": names[0], "text": "250", "digits": []},
        {"file": names[2], "error": "was locked"},  # failed before: tried again
        {"file": names[3], "text": "315", "digits": []},
    ]
    out.write_text("".join(json.dumps(r) + "\n" for r in earlier) + '{"file": "torn')
    assert load_done(out) == {names[0], names[3]}
    code = main(["read", *names, "--jobs", "1", "--skip-done", str(out)])
    assert code == 0
    assert capsys.readouterr().out == ""  # the results went to the file
    records = _lines(out.read_text().split('{"file": "torn', 1)[1].split("\n", 1)[1])
    assert [(r["file"], r["text"]) for r in records] == [
        (name, text)
        for name, text in zip(names, NUMBERS, strict=True)
        if name not in {names[0], names[3]}
    ]
    # Everything is done now: a third run reads nothing and adds nothing.
    size = out.stat().st_size
    assert main(["read", *names, "--jobs", "1", "--skip-done", str(out)]) == 0
    assert out.stat().st_size == size


def test_a_corrupt_file_is_reported_and_skipped(scans, tmp_path, capsys) -> None:
    _, names = scans
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(Path(names[1]).read_bytes()[:200])
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\xff\xd8 certainly not a JPEG")
    missing = tmp_path / "missing.png"
    files = [names[2], str(truncated), str(garbage), str(missing), names[3]]
    assert main(["read", *files, "--jobs", "1", "--all-pages"]) == 1
    captured = capsys.readouterr()
    records = _lines(captured.out)
    assert [r["file"] for r in records] == files
    assert [r.get("text") for r in records] == ["4072", None, None, None, "315"]
    for record in records[1:4]:
        assert record["error"] and "\n" not in record["error"]
    errors = [line for line in captured.err.splitlines() if ": " in line and "%|" not in line]
    errors = [line.split("\r")[-1] for line in errors if "read," not in line]
    assert sorted(e.split(": ")[0] for e in errors) == sorted(files[1:4])
    assert "2 read, 3 failed" in captured.err


def test_annotated_pictures_get_unique_names_and_are_never_overwritten(
    scans, tmp_path, capsys
) -> None:
    """As `digits read --annotate`: the same stem twice gives x.jpg and x-2.jpg, a PDF's
    pages -p1, -p2, and a picture already there is refused, not written over."""
    root, names = scans
    other = tmp_path / "other"
    other.mkdir()
    twin = other / Path(names[1]).name  # s1.png again, in another folder
    twin.write_bytes(Path(names[2]).read_bytes())
    out = tmp_path / "drawn"
    files = [names[1], str(twin), str(root / "t.pdf")]
    args = ["read", *files, "--jobs", "1", "--all-pages", "--annotate", str(out)]
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["s1-2.jpg", "s1.jpg", "t-p1.jpg", "t-p2.jpg"]
    pictures = {p.name: p.read_bytes() for p in out.iterdir()}
    assert pictures["s1.jpg"] != pictures["s1-2.jpg"]  # two inputs, two pictures
    capsys.readouterr()
    assert main(args) == 1  # the second run finds every picture there already
    records = _lines(capsys.readouterr().out)
    assert all("not overwritten" in r["error"] for r in records)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == pictures
