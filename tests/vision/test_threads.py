"""The reader's own intra-op threads: used for its small batches, the caller's left alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from tests.vision.conftest import render
from vision import DigitReader
from vision.classifier import SMALL_BATCH, DigitClassifier, intra_op_threads

CALLER = 3  # a count neither the default (1) nor this machine's cores would give


class Recording(nn.Module):
    """Wraps a model and notes the intra-op thread count each forward pass runs with."""

    def __init__(self, inner: nn.Module, seen: list[tuple[int, int]]) -> None:
        super().__init__()
        self.inner = inner
        self.seen = seen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((threading.get_ident(), torch.get_num_threads()))
        return self.inner(x)


def recorded(threads: int) -> tuple[DigitReader, list[tuple[int, int]]]:
    """A fresh reader with `threads` whose two models record what they ran with."""
    reader = DigitReader.load(threads=threads)
    seen: list[tuple[int, int]] = []
    for clf in (reader.classifier, reader.segmenter):
        assert clf is not None and clf.threads == threads
        clf.model = Recording(clf.model, seen)
    return reader, seen


@pytest.fixture
def caller_threads() -> Iterator[int]:
    """This thread set to CALLER intra-op threads for the test, restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(CALLER)
    try:
        yield CALLER
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_read_runs_on_the_readers_threads_and_leaves_the_callers(
    clear_digits, caller_threads: int, threads: int
) -> None:
    reader, seen = recorded(threads)
    assert reader.read(render("4072", clear_digits)).text == "4072"
    assert seen and {n for _, n in seen} == {threads}
    assert torch.get_num_threads() == caller_threads


def test_threads_zero_reads_with_the_callers_setting(clear_digits, caller_threads: int) -> None:
    reader, seen = recorded(0)
    assert reader.read(render("315", clear_digits)).text == "315"
    assert {n for _, n in seen} == {caller_threads}


def test_large_batches_run_on_the_callers_setting(mnist_test, caller_threads: int) -> None:
    clf = DigitClassifier.load()
    seen: list[tuple[int, int]] = []
    clf.model = Recording(clf.model, seen)
    clf.classify(mnist_test.images[:SMALL_BATCH])
    clf.classify(mnist_test.images[: SMALL_BATCH + 1])
    assert [n for _, n in seen] == [1, caller_threads]
    assert torch.get_num_threads() == caller_threads


def test_concurrent_readers_keep_their_own_counts(clear_digits) -> None:
    """Readers of one and two threads read at once in four threads, each thread set to
    CALLER first: every pass runs on its reader's count, every thread keeps CALLER."""
    images = [render(text, clear_digits) for text in ("9182", "560", "47")]
    one, seen_one = recorded(1)
    two, seen_two = recorded(2)
    after: dict[int, int] = {}
    texts: list[str] = []
    start = threading.Barrier(4)

    def work(reader: DigitReader) -> None:
        torch.set_num_threads(CALLER)
        start.wait()
        for _ in range(3):
            texts.extend(reader.read(img).text for img in images)
        after[threading.get_ident()] = torch.get_num_threads()

    workers = [threading.Thread(target=work, args=(r,)) for r in (one, two, one, two)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert sorted(texts) == sorted(["9182", "560", "47"] * 12)
    assert seen_one and {n for _, n in seen_one} == {1}
    assert seen_two and {n for _, n in seen_two} == {2}
    assert len({ident for ident, _ in seen_one + seen_two}) == 4
    assert list(after.values()) == [CALLER] * 4


def test_intra_op_threads_restores_on_error(caller_threads: int) -> None:
    with pytest.raises(RuntimeError), intra_op_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == caller_threads
    with intra_op_threads(0):
        assert torch.get_num_threads() == caller_threads


def test_parallel_single_thread_calls_are_not_serialised(mnist_test) -> None:
    """One-thread calls on two threads overlap (a core each); the lock is for the rest."""
    clf = DigitClassifier.load()
    inside = threading.Barrier(2, timeout=10)
    met: list[bool] = []

    class Meeting(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            inside.wait()  # both calls must be inside forward at once
            met.append(True)
            return self.inner(x)

    clf.model = Meeting(clf.model)
    batch = np.ascontiguousarray(mnist_test.images[:8])
    workers = [threading.Thread(target=clf.classify, args=(batch,)) for _ in range(2)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert met == [True, True]
