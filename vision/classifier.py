"""DigitClassifier: load a checkpoint once, classify MNIST-normalised digits in batches."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from vision.checkpoint import LINES_KEY, CheckpointError, file_sha256, load_checkpoint
from vision.model import DIGIT_CLASSES, DigitNet, ModelConfig, preprocess
from vision.normalize import PREPROCESSING_VERSION

log = logging.getLogger(__name__)

DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "models" / "default.pt"
# The reader's split and merge decisions are tuned to this model's confidences; it also
# knows two touching digits as "not one digit", and stays fixed while the reading model
# is fine-tuned (see DigitReader).
SEGMENTER_MODEL_PATH = DEFAULT_MODEL_PATH.with_name("segmenter.pt")
# PyTorch intra-op threads for one batch of at most SMALL_BATCH digits (a photo's crops).
# Such a batch takes a few milliseconds: more threads buy nothing, and each extra one
# spins at barriers for a core that a neighbouring process may hold (p95 53 -> 324 ms
# with one busy loop on a 2-core machine). Larger batches (an evaluation's thousands)
# run on the caller's setting.
DEFAULT_THREADS = 1
SMALL_BATCH = 256


@functools.cache
def _openmp_setters() -> tuple[Callable[[int], Any], Callable[[int], int] | None] | None:
    """`omp_set_num_threads` and MKL's `mkl_set_num_threads_local` of PyTorch's runtime,
    or None where PyTorch's threads are not OpenMP's (then classifiers leave them alone).

    Both set the calling OS thread's count only. `torch.set_num_threads` would also
    write the process default that threads copy on their first PyTorch call: a thread
    starting while a reader is inside its block would take the reader's count for good.
    """
    if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        log.info("PyTorch's parallel backend is not OpenMP: intra-op threads left as set")
        return None
    try:
        process = ctypes.CDLL(None)  # PyTorch loads its OpenMP runtime (and MKL) globally
        omp_set = process.omp_set_num_threads
    except (OSError, AttributeError, TypeError):  # TypeError: no CDLL(None) on Windows
        log.info("PyTorch's OpenMP runtime is not reachable: intra-op threads left as set")
        return None
    omp_set.argtypes, omp_set.restype = [ctypes.c_int], None
    mkl_local = getattr(process, "mkl_set_num_threads_local", None)
    if mkl_local is not None:
        mkl_local.argtypes, mkl_local.restype = [ctypes.c_int], ctypes.c_int
    # Another library's OpenMP runtime may have answered instead of PyTorch's: check.
    before = torch.get_num_threads()
    omp_set(before + 1)
    reached = torch.get_num_threads() == before + 1
    omp_set(before)
    if not reached:
        log.info("another OpenMP runtime answered: intra-op threads left as set")
        return None
    return omp_set, mkl_local


@contextlib.contextmanager
def intra_op_threads(threads: int) -> Iterator[None]:
    """Run the block on `threads` PyTorch intra-op threads in this OS thread, then restore.

    OpenMP keeps the count per OS thread, so readers in other threads keep theirs and
    the caller's `torch.get_num_threads()` is the same afterwards (the first call in a
    thread copies the process default, which this never changes). About a microsecond.
    `threads <= 0` leaves everything as it is.
    """
    setters = _openmp_setters() if threads > 0 else None
    if setters is None:
        yield
        return
    before = torch.get_num_threads()  # also settles this thread's copy of the default
    if before == threads:
        yield
        return
    omp_set, mkl_local = setters
    omp_set(threads)
    mkl_before = mkl_local(threads) if mkl_local is not None else None
    try:
        yield
    finally:
        omp_set(before)
        if mkl_local is not None and mkl_before is not None:
            mkl_local(mkl_before)


def pick_device(requested: str | None = None) -> torch.device:
    """`requested` ('cpu', 'cuda', 'cuda:1', ...) or CUDA when present, else CPU."""
    if requested:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("CUDA was requested but no CUDA device is available")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _fold_batchnorm(model: DigitNet) -> nn.Module:
    """Fold each eval-mode BatchNorm2d into the convolution before it (fewer passes on CPU)."""
    layers: list[nn.Module] = []
    for module in model.features:
        if isinstance(module, nn.Sequential) and isinstance(module[0], nn.Conv2d):
            conv, bn, *rest = list(module)
            layers.append(nn.Sequential(fuse_conv_bn_eval(conv, bn), *rest))
        else:
            layers.append(module)
    return nn.Sequential(*layers, model.head)


@dataclass
class DigitClassifier:
    """A loaded model. Thread-safe for concurrent `classify` calls."""

    model: nn.Module
    device: torch.device
    path: Path | None = None
    sha256: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 512
    # For a model with a "not one digit" class: how much of that class's evidence counts
    # (a prior: touching pairs are far rarer on a page than in the segmenter's training).
    multi_weight: float = 1.0
    # PyTorch intra-op threads for a batch of at most SMALL_BATCH digits (0: the caller's
    # setting); see DEFAULT_THREADS.
    threads: int = DEFAULT_THREADS
    # Calls on several threads each would only fight over the same cores: serialise them
    # (calls on one thread each run in parallel, a core each).
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(
        cls,
        path: Path | str | None = None,
        *,
        device: str | torch.device | None = None,
        threads: int = DEFAULT_THREADS,
    ) -> DigitClassifier:
        """Load a checkpoint (the shipped default model when `path` is None).

        `threads`: PyTorch intra-op threads for small batches (0: the caller's setting).
        """
        path = Path(path) if path is not None else DEFAULT_MODEL_PATH
        body = load_checkpoint(path)
        if body.get("kind") == "line":
            raise CheckpointError(f"{path} is a line model (vision.LineReader), not a classifier")
        version = int(body["preprocessing"])
        if version != PREPROCESSING_VERSION:
            log.warning(
                "%s was trained with preprocessing v%d, this reader uses v%d",
                path,
                version,
                PREPROCESSING_VERSION,
            )
        try:
            net = DigitNet(ModelConfig.from_dict(body["model_config"]))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: unknown architecture: {exc}") from exc
        try:
            net.load_state_dict(body["state_dict"])
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: weights do not fit the architecture: {exc}") from exc
        info = {k: v for k, v in body.items() if k not in ("state_dict", LINES_KEY)}
        if isinstance(body.get(LINES_KEY), dict):  # the line model it was promoted with
            info["line_model"] = str(body[LINES_KEY].get("version") or "carried")
        return cls.from_model(
            net,
            device=device,
            path=path,
            sha256=file_sha256(path),
            info=info,
            multi_weight=float(body.get("multi_weight", 1.0)),
            threads=threads,
        )

    @classmethod
    def from_model(
        cls,
        net: DigitNet,
        *,
        device: str | torch.device | None = None,
        path: Path | None = None,
        sha256: str = "",
        info: dict[str, Any] | None = None,
        multi_weight: float = 1.0,
        threads: int = DEFAULT_THREADS,
    ) -> DigitClassifier:
        """Wrap an in-memory network (training evaluates candidates this way)."""
        dev = pick_device(str(device) if device is not None else None)
        net = net.to("cpu").eval()
        model = _fold_batchnorm(net) if dev.type == "cpu" else net
        model = model.to(dev).eval()
        if dev.type == "cpu":
            model = model.to(memory_format=torch.channels_last)
        if not multi_weight > 0:
            raise ValueError(f"multi_weight must be positive, got {multi_weight}")
        return cls(
            model=model,
            device=dev,
            path=path,
            sha256=sha256,
            info=info or {},
            multi_weight=multi_weight,
            threads=threads,
        )

    @property
    def version(self) -> str:
        """A short identifier: the checkpoint's recorded version, else its hash prefix."""
        return str(self.info.get("version") or (self.sha256[:12] if self.sha256 else "memory"))

    @property
    def lines_path(self) -> Path | None:
        """The checkpoint carrying this classifier's own line model (`LINES_KEY`), or
        None: it reads with the shipped one."""
        return self.path if self.info.get("line_model") else None

    def classify(self, images: np.ndarray) -> np.ndarray:
        """uint8 [N, 28, 28] white-on-black MNIST-normalised → float32 probabilities [N, 10].

        A model with a "not one digit" class returns only the digits' probabilities: they
        sum to less than 1 for two touching digits, so the reader cuts such a shape.
        """
        images = np.asarray(images)
        if images.ndim == 2:
            images = images[None]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(f"classify expects [N, 28, 28] images, got shape {images.shape}")
        if images.dtype != np.uint8:
            raise ValueError(f"classify expects uint8 images, got {images.dtype}")
        if len(images) == 0:
            return np.zeros((0, 10), np.float32)
        out = np.empty((len(images), 10), np.float32)
        small = self.device.type == "cpu" and len(images) <= SMALL_BATCH and self.threads > 0
        threads = self.threads if small else 0
        lock = self._lock if threads != 1 else contextlib.nullcontext()
        with lock, intra_op_threads(threads), torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                # A small copy: inputs may be read-only views (torch warns on those).
                chunk = torch.from_numpy(np.array(images[start : start + self.batch_size]))
                x = preprocess(chunk.to(self.device))
                if self.device.type == "cpu":
                    x = x.contiguous(memory_format=torch.channels_last)
                logits = self.model(x).float()
                if logits.shape[1] > DIGIT_CLASSES:
                    logits[:, DIGIT_CLASSES:] += math.log(self.multi_weight)
                probs = torch.softmax(logits, dim=1)[:, :DIGIT_CLASSES]
                out[start : start + len(chunk)] = probs.cpu().numpy()
        return out
