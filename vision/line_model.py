"""The line model: a CNN + CTC reader of one line of digits, and its input normalisation.

It sees a whole line at once, so it tells a box wall from a 1 and a printed mark from a
digit by what stands beside them, which a 28×28 crop cannot show. Its output is a
string with each digit's position; the reader uses it to decide which shapes are
digits and how many a line holds (`vision.line_reader`). Kept apart from the training
loop, like `vision.model`; one input function serves training and reading.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch
from torch import nn

LINE_HEIGHT = 32  # pixels: every band is resized to this height
LINE_STRIDE = 4  # band pixels per output frame (two 2× poolings along x)
MAX_LINE_WIDTH = 1024  # a longer band is squeezed to this width
BLANK = 10  # the CTC blank class, after the ten digits


@dataclass(frozen=True)
class LineConfig:
    """Architecture hyper-parameters (stored in every checkpoint)."""

    # Sized for latency: a line of ten digits costs about 2 ms on one CPU core.
    channels: tuple[int, int, int, int] = (16, 32, 48, 64)
    hidden: int = 64

    def to_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> LineConfig:
        channels = tuple(int(c) for c in raw.get("channels", cls.channels))  # type: ignore[attr-defined]
        if len(channels) != 4:
            raise ValueError(f"a line model has 4 channel widths, not {len(channels)}")
        return cls(channels=channels, hidden=int(raw.get("hidden", cls.hidden)))  # type: ignore[call-overload]


def _conv(
    cin: int, cout: int, kernel: tuple[int, int] | int = 3, padding: int = 1
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=padding, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class LineNet(nn.Module):
    """[B, 1, 32, W] band → [B, W/4, 11] logits (ten digits and the blank).

    Convolutions shrink the height to one row (32→16→8→4→2→1) and the width by 4; a
    bidirectional GRU then lets every frame see the whole line.
    """

    def __init__(self, config: LineConfig | None = None) -> None:
        super().__init__()
        self.config = config or LineConfig()
        a, b, c, d = self.config.channels
        self.features = nn.Sequential(
            _conv(1, a),
            nn.MaxPool2d(2),
            _conv(a, b),
            nn.MaxPool2d(2),
            _conv(b, c),
            _conv(c, c),
            nn.MaxPool2d((2, 1)),
            _conv(c, d),
            nn.MaxPool2d((2, 1)),
            _conv(d, d, (2, 1), padding=0),
        )
        self.rnn = nn.GRU(d, self.config.hidden, bidirectional=True, batch_first=True)
        self.head = nn.Linear(2 * self.config.hidden, BLANK + 1)

    def forward(self, x: torch.Tensor, frames: torch.Tensor | None = None) -> torch.Tensor:
        """`frames`: each band's own frame count, so a short band in a batch of long ones
        is read as if alone (the GRU stops at its end instead of running on padding)."""
        f = self.features(x).squeeze(2).transpose(1, 2)
        if frames is None:
            f, _ = self.rnn(f)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(
                f, frames.cpu(), batch_first=True, enforce_sorted=False
            )
            f, _ = nn.utils.rnn.pad_packed_sequence(
                self.rnn(packed)[0], batch_first=True, total_length=f.shape[1]
            )
        return self.head(f)


def line_frames(width: int) -> int:
    """How many output frames a band of `width` (after `resize_line`) gives."""
    return width // LINE_STRIDE


def resize_line(image: np.ndarray) -> np.ndarray:
    """A BGR or grey uint8 band as grey uint8 [LINE_HEIGHT, W], its aspect kept."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    width = int(np.clip(round(w * LINE_HEIGHT / max(1, h)), 3 * LINE_STRIDE, MAX_LINE_WIDTH))
    shrink = h > LINE_HEIGHT
    return cv2.resize(
        grey, (width, LINE_HEIGHT), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )


def normalize_line(grey: np.ndarray) -> np.ndarray:
    """Resized grey band → float32 with ink positive and paper near 0, whatever the light.

    Most of a band is paper: when its brightest pixels stand further from the median
    than its darkest, the ink is the light part (chalk, a negative) and is turned dark.
    """
    g = grey.astype(np.float32)
    low, mid, high = np.percentile(g, (1, 50, 99))
    if high - mid > mid - low:
        g = 255.0 - g
    paper, ink = np.percentile(g, (90, 1))
    x = (paper - g) / max(float(paper - ink), 20.0)
    return np.clip(x, -0.5, 1.5).astype(np.float32)


def line_input(image: np.ndarray) -> np.ndarray:
    """The model's input for one band (BGR or grey uint8): float32 [LINE_HEIGHT, W]."""
    return normalize_line(resize_line(image))


def line_batch(resized: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Resized bands (`resize_line`) as one padded batch [B, 1, H, W] and their frame counts."""
    width = max(r.shape[1] for r in resized)
    x = np.zeros((len(resized), 1, LINE_HEIGHT, width), np.float32)
    for i, r in enumerate(resized):
        x[i, 0, :, : r.shape[1]] = normalize_line(r)
    return torch.from_numpy(x), torch.tensor([line_frames(r.shape[1]) for r in resized])
