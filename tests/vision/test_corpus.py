"""The bad-input corpus (tests/vision/corpus.py) through `DigitReader.read` and
`read_document`, and through `digits read`: each file reads its number or gives its
documented error, in under 10 s and 1.5 GB above the loaded model, with nothing else on
stderr. The bot's handlers get the same corpus in tests/bot/test_bot_corpus.py."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.vision import corpus

REPO = Path(__file__).resolve().parents[2]
MAX_SECONDS = 10.0
MAX_EXTRA_MB = 1536


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("DIGITS_", "DATABASE_"))} | {
        "PYTHONPATH": str(REPO)
    }


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory, clear_digits) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    cases = corpus.build(clear_digits)
    corpus.write(cases, folder)
    return folder


@pytest.fixture(scope="module")
def results(corpus_dir: Path) -> dict:
    """The corpus read in a fresh process, so that its memory is the reader's alone."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.vision.corpus", str(corpus_dir)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # No DecompressionBombWarning, no libpng/libjpeg lines, no log noise: nothing at all.
    assert proc.stderr == ""
    return json.loads((corpus_dir / "results.json").read_text())


@pytest.mark.slow
def test_corpus_is_large_and_varied(results: dict) -> None:
    cases = results["cases"]
    assert len(cases) >= 120
    read_outcomes = {o.split(":")[0] + ":" + o.split(":")[1][:4] for c in cases for o in c["read"]}
    for kind in ("error:Corr", "error:Imag", "error:Unsu", "error:File", "error:Pass"):
        assert kind in read_outcomes, kind
    assert sum(c["read"] == ["text:"] for c in cases) >= 20  # blank, tiny, thin
    assert sum(c["read"][0].startswith("text:") and c["read"] != ["text:"] for c in cases) >= 45


def test_every_case_reads_its_number_or_gives_its_documented_error(results: dict) -> None:
    wrong = [
        f"{c['name']}: read {c['got_read']!r} (want one of {c['read']}), "
        f"document {c['got_document']!r} (want one of {c['document']})"
        for c in results["cases"]
        if c["got_read"] not in c["read"] or c["got_document"] not in c["document"]
    ]
    assert not wrong, "\n".join(wrong)


def test_every_case_is_quick_and_bounded_in_memory(results: dict) -> None:
    slow = [
        f"{c['name']}: {c['read_s']:.1f} s / {c['document_s']:.1f} s"
        for c in results["cases"]
        if max(c["read_s"], c["document_s"]) > MAX_SECONDS
    ]
    assert not slow, slow
    extra_mb = (results["peak_kb"] - results["loaded_kb"]) / 1024
    # VmHWM is the peak since the start; the case that set it is the first to reach it.
    culprit = next(c["name"] for c in results["cases"] if c["peak_kb"] == results["peak_kb"])
    assert extra_mb < MAX_EXTRA_MB, f"{extra_mb:.0f} MB above the loaded model ({culprit})"


@pytest.mark.slow
def test_digits_read_gives_one_line_per_bad_file(
    corpus_dir: Path, results: dict, tmp_path: Path
) -> None:
    """Through the command: each refused file is one stderr line naming it, and later
    files are still read (a thin strip used to stop the command with a traceback)."""
    refused = [c for c in results["cases"] if all(o.startswith("error:") for o in c["read"])]
    blank = [
        c
        for c in results["cases"]
        if c["read"] == ["text:"] and ("thin" in c["name"] or "tiny" in c["name"])
    ]
    files = [str(corpus_dir / c["file"]) for c in refused + blank]
    annotated = tmp_path / "annotated"
    proc = subprocess.run(
        [sys.executable, "-m", "digits.cli", "read", "--annotate", str(annotated), *files],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1
    errors = proc.stderr.splitlines()
    assert [line.split(": ", 1)[0] for line in errors] == files[: len(refused)], proc.stderr
    assert all(line.split(": ", 1)[1].endswith(".") for line in errors)
    assert [line.split("\t")[0] for line in proc.stdout.splitlines()] == files[len(refused) :]
    assert len(list(annotated.iterdir())) == len(blank) >= 10  # thin strips drawn too


@pytest.mark.slow
def test_dev_zero_is_refused_within_a_memory_limit() -> None:
    """`digits read /dev/zero` grew to 18 GB; under a 5 GB address-space limit (the
    loaded model needs about 4) it must say the file is too large, then read on."""
    limit = 5 * 2**30
    sample = REPO / "samples" / "sample01.jpg"

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.run(
        [sys.executable, "-m", "digits.cli", "read", "/dev/zero", str(sample)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=cap,
    )
    assert proc.returncode == 1
    assert proc.stderr == "/dev/zero: The file is too large (the limit is 50 MB).\n"
    assert proc.stdout.startswith(f"{sample}\t")
