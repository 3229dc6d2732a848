"""`digits bench latency`: both readers timed idle and busy, the busy loop ended after."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from digits.cli import main


def test_bench_latency_rows_for_each_reader_and_set(capsys, devsets_dir: Path) -> None:
    args = ["--devsets-dir", str(devsets_dir), "--limit", "3", "--threads", "1", "--json"]
    code = main(["bench", "latency", *args])
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(r["reader"].split(" ")[0], r["set"]) for r in rows} == {
        (reader, s) for reader in ("1", "PyTorch") for s in ("real photos", "real 1280x960")
    }
    for row in rows:
        assert row["idle_p50_ms"] > 0 and row["busy x1_p95_ms"] >= row["busy x1_p50_ms"]
        assert row["ratio_p50"] > 0
    assert multiprocessing.active_children() == []  # the busy loop is gone
