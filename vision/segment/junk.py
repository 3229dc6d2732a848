"""A learned last filter: which cut shapes are no digit at all (a wall, a separator, texture).

A box's wall at a crop's edge, the walls between boxed digits, a dash between groups:
cut out and centred in 28×28, each looks like a "1" to any crop classifier (a segmenter
fine-tuned to call such crops "not one digit" dropped real 1s with them; see the model
card). What tells them apart is their context: how tall against the other digits, how
near the frame, how straight and upright, how far from the pen's colour and stroke, how
near the neighbours (not how much it looks like a "1": that is what a wall shares with
a 1). `junk_features` measures that for each candidate, and a logistic
regression fitted on drawn form crops (`training.data.fields`, MNIST *train* digits;
`digits train-junk`) gives each candidate a probability of being no digit. Shapes above
the checkpoint's threshold are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vision.normalize import quantile
from vision.segment.candidates import Candidate

JUNK_MODEL_PATH = Path(__file__).resolve().parent.parent / "models" / "junk.pt"

FEATURES = (
    "height",  # of the median candidate height
    "width",
    "log_aspect",  # log(h / w)
    "to_side",  # distance to the left or right frame, in digit heights (capped at 3)
    "to_top_bottom",
    "first_or_last",  # the leftmost or rightmost of the shapes beside it
    "gap",  # to the nearest shape beside it, in digit heights (capped at 3)
    "fill",  # ink share of its box
    "bold",  # stroke width against the median's
    "strength",  # ink strength against the median's
    "thinness",  # minor / major spread of its ink (0: a straight line)
    "lean",  # |dx/dy| of its ink's main axis
    "colour",  # distance of its colour from the median candidate's (0-1)
    "mass",  # its ten digit probabilities' sum (below 1: "not one digit")
    "alone",  # the only candidate
)


def junk_features(cands: list[Candidate], image: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Float32 [len(cands), len(FEATURES)] for scored candidates in working coordinates."""
    n = len(cands)
    out = np.zeros((n, len(FEATURES)), np.float32)
    if n == 0:
        return out
    H, W = ink.shape
    mh = max(1.0, float(np.median([c.h for c in cands])))
    widths = np.array([c.half_width for c in cands], np.float32)
    strength = np.array(
        [quantile(ink[c.y : c.y2, c.x : c.x2][c.mask], 0.9) if c.area else 0.0 for c in cands],
        np.float32,
    )
    colours = np.array([_colour(c, image) for c in cands], np.float32)
    mcol = np.median(colours, axis=0)
    for i, c in enumerate(cands):
        beside = [
            d for d in cands if d is not c and min(c.y2, d.y2) - max(c.y, d.y) > 0.3 * min(c.h, d.h)
        ]
        left = [c.x - d.x2 for d in beside if d.cx < c.cx]
        right = [d.x - c.x2 for d in beside if d.cx >= c.cx]
        gap = min([max(0, g) for g in left + right], default=3 * mh) / mh
        thin, lean = _shape(c.mask)
        p = c.scores
        out[i] = (
            c.h / mh,
            c.w / mh,
            np.log(c.h / max(1, c.w)),
            min(3.0, min(c.x, W - c.x2) / mh),
            min(3.0, min(c.y, H - c.y2) / mh),
            float(not left or not right),
            min(3.0, gap),
            c.area / max(1, c.w * c.h),
            widths[i] / max(1e-3, float(np.median(widths))),
            strength[i] / max(1e-3, float(np.median(strength))),
            thin,
            lean,
            float(np.linalg.norm(colours[i] - mcol)) / 255.0,
            float(p.sum()),
            float(n == 1),
        )
    return out


def _colour(c: Candidate, image: np.ndarray) -> np.ndarray:
    """Median colour (BGR; grey repeated) of the image under the candidate's ink."""
    region = image[c.y : c.y2, c.x : c.x2]
    px = region[c.mask] if c.area else region.reshape(-1, *region.shape[2:])
    if px.ndim == 1:
        px = np.repeat(px[:, None], 3, axis=1)
    return np.median(px[:, :3].astype(np.float32), axis=0) if len(px) else np.zeros(3)


def _shape(mask: np.ndarray) -> tuple[float, float]:
    """(minor / major spread of the ink, |dx/dy| of its main axis)."""
    ys, xs = np.nonzero(mask)
    if len(ys) < 3:
        return 1.0, 0.0
    cov = np.cov(np.stack([xs, ys]).astype(np.float32))
    vals, vecs = np.linalg.eigh(cov)
    major = vecs[:, 1]
    thin = float(np.sqrt(max(vals[0], 0.0) / max(vals[1], 1e-6)))
    lean = float(min(3.0, abs(major[0]) / max(1e-3, abs(major[1]))))
    return thin, lean


@dataclass
class JunkFilter:
    """Logistic regression over `FEATURES` (standardised): P(no digit) per candidate."""

    weight: np.ndarray  # [F]
    bias: float
    mean: np.ndarray  # [F]
    scale: np.ndarray  # [F]
    threshold: float = 0.5

    def probability(self, features: np.ndarray) -> np.ndarray:
        z = ((features - self.mean) / self.scale) @ self.weight + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    def keep(self, cands: list[Candidate], image: np.ndarray, ink: np.ndarray) -> list[Candidate]:
        """The candidates that are digits (all of them when there is only one or none)."""
        if len(cands) < 2:
            return cands
        p = self.probability(junk_features(cands, image, ink))
        return [c for c, q in zip(cands, p, strict=True) if q < self.threshold]

    def payload(self, **extra: object) -> dict[str, object]:
        """The checkpoint body (tensors and plain values, `vision.checkpoint`)."""
        import torch

        return {
            "version": extra.pop("version", "junk-v1"),
            "state_dict": {
                name: torch.tensor(np.asarray(v, np.float32))
                for name, v in (
                    ("weight", self.weight),
                    ("bias", [self.bias]),
                    ("mean", self.mean),
                    ("scale", self.scale),
                )
            },
            "model_config": {"kind": "junk-logistic", "features": list(FEATURES)},
            "preprocessing": "junk-features-v1",
            "threshold": self.threshold,
            **extra,
        }

    @classmethod
    def load(cls, path: str | Path = JUNK_MODEL_PATH) -> JunkFilter:
        from vision.checkpoint import CheckpointError, load_checkpoint

        body = load_checkpoint(Path(path))
        if list(body["model_config"].get("features", [])) != list(FEATURES):
            raise CheckpointError(f"{path}: its features are not this build's junk features")
        sd = body["state_dict"]
        return cls(
            sd["weight"].numpy().astype(np.float32),
            float(sd["bias"][0]),
            sd["mean"].numpy().astype(np.float32),
            sd["scale"].numpy().astype(np.float32),
            float(body.get("threshold", 0.5)),
        )
