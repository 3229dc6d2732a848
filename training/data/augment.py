"""Batched augmentation that prepares an MNIST-trained model for real photos.

Everything is whole-batch tensor work (no per-sample Python): European 1s and 7s,
stroke thickness, affine + elastic warps through one `grid_sample`, blur and noise.
After the style strokes are drawn, each digit is re-fitted into MNIST's 20×20 box and
re-centred by centre of mass, as the reader's normalisation would.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

SIZE = 28


@dataclass(frozen=True)
class AugmentConfig:
    p_clean: float = 0.15  # share of samples left untouched (keeps MNIST's own statistics)
    rotate_deg: float = 14.0
    scale: tuple[float, float] = (0.82, 1.12)
    aspect: float = 0.18  # relative width change, for narrow and wide handwriting
    shear: float = 0.3
    shift_px: float = 2.0
    p_elastic: float = 0.5
    elastic_px: float = 1.2
    p_thick: float = 0.2
    p_thin: float = 0.1
    p_blur: float = 0.2
    p_noise: float = 0.25
    p_euro: float = 0.4  # share of 1s given a flag (and maybe a foot), of 7s a crossbar

    def to_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> AugmentConfig:
        fields = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        if "scale" in fields:
            fields["scale"] = tuple(fields["scale"])  # type: ignore[arg-type]
        return cls(**fields)  # type: ignore[arg-type]


def _rand(n: int, gen: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator | None, device: torch.device):
    return lo + (hi - lo) * _rand(n, gen, device)


def draw_segments(
    canvas: torch.Tensor, p0: torch.Tensor, p1: torch.Tensor, width: torch.Tensor
) -> torch.Tensor:
    """Draw one anti-aliased segment per image: canvas [N, H, W], points [N, 2] as (x, y)."""
    n, h, w = canvas.shape
    ys = torch.arange(h, device=canvas.device, dtype=canvas.dtype).view(1, h, 1)
    xs = torch.arange(w, device=canvas.device, dtype=canvas.dtype).view(1, 1, w)
    d = (p1 - p0).view(n, 2, 1, 1)
    length2 = (d**2).sum(1).clamp_min(1e-6)
    px = xs - p0[:, 0].view(n, 1, 1)
    py = ys - p0[:, 1].view(n, 1, 1)
    t = ((px * d[:, 0] + py * d[:, 1]) / length2).clamp(0, 1)
    dist = torch.sqrt((px - t * d[:, 0]) ** 2 + (py - t * d[:, 1]) ** 2)
    stroke = (width.view(n, 1, 1) / 2 + 0.5 - dist).clamp(0, 1)
    return torch.maximum(canvas, stroke)


def _ink_geometry(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image: top/bottom ink rows and the ink's mean column on chosen rows."""
    ink = x > 0.4
    rows = ink.any(2)
    idx = torch.arange(SIZE, device=x.device)
    big = torch.full_like(idx, SIZE)
    top = torch.where(rows, idx, big).min(1).values.clamp(max=SIZE - 1)
    bottom = torch.where(rows, idx, -1).max(1).values.clamp(min=0)
    cols = idx.to(x.dtype)

    def column_at(row: torch.Tensor) -> torch.Tensor:
        band = x[torch.arange(len(x), device=x.device), row.clamp(0, SIZE - 1)]
        mass = band.sum(1)
        centre = (band * cols).sum(1) / mass.clamp_min(1e-6)
        return torch.where(mass > 0, centre, torch.full_like(centre, SIZE / 2))

    return {"top": top, "bottom": bottom, "column_at": column_at}  # type: ignore[dict-item]


def european_styles(
    x: torch.Tensor, labels: torch.Tensor, p: float, gen: torch.Generator | None
) -> torch.Tensor:
    """Add a flag (and sometimes a foot) to some 1s and a crossbar to some 7s."""
    n = len(x)
    dev = x.device
    choose = _rand(n, gen, dev) < p
    ones = choose & (labels == 1)
    sevens = choose & (labels == 7)
    if not (ones.any() or sevens.any()):
        return x
    canvas = x[:, 0].clone()
    geo = _ink_geometry(canvas)
    top, bottom = geo["top"], geo["bottom"]
    height = (bottom - top + 1).clamp_min(6).to(x.dtype)
    column_at = geo["column_at"]
    width = _uniform(n, 1.6, 2.8, gen, dev)
    top_f, bottom_f = top.to(x.dtype), bottom.to(x.dtype)
    if ones.any():
        x_top = column_at(top + 1)
        flag_end = torch.stack(
            [
                x_top - height * _uniform(n, 0.2, 0.4, gen, dev),
                top_f + height * _uniform(n, 0.15, 0.35, gen, dev),
            ],
            1,
        )
        flag = draw_segments(canvas, torch.stack([x_top, top_f + 0.5], 1), flag_end, width)
        canvas = torch.where(ones.view(n, 1, 1), flag, canvas)
        feet = ones & (_rand(n, gen, dev) < 0.5)
        x_bottom = column_at(bottom - 1)
        half = height * _uniform(n, 0.18, 0.3, gen, dev)
        foot = draw_segments(
            canvas,
            torch.stack([x_bottom - half, bottom_f], 1),
            torch.stack([x_bottom + half, bottom_f], 1),
            width,
        )
        canvas = torch.where(feet.view(n, 1, 1), foot, canvas)
    if sevens.any():
        y_mid = top_f + height * _uniform(n, 0.45, 0.6, gen, dev)
        x_mid = column_at(y_mid.round().long())
        half = height * _uniform(n, 0.18, 0.3, gen, dev)
        tilt = height * _uniform(n, -0.06, 0.06, gen, dev)
        bar = draw_segments(
            canvas,
            torch.stack([x_mid - half, y_mid + tilt], 1),
            torch.stack([x_mid + half, y_mid - tilt], 1),
            width,
        )
        canvas = torch.where(sevens.view(n, 1, 1), bar, canvas)
    return canvas.unsqueeze(1)


def _fit_box_theta(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scale (≤1) that fits the ink into 20×20, and its centre of mass, per image."""
    img = x[:, 0]
    ink = img > 0.1
    idx = torch.arange(SIZE, device=x.device)
    rows, cols = ink.any(2), ink.any(1)
    big = torch.full_like(idx, SIZE)
    extent_y = torch.where(rows, idx, -1).max(1).values - torch.where(rows, idx, big).min(1).values
    extent_x = torch.where(cols, idx, -1).max(1).values - torch.where(cols, idx, big).min(1).values
    extent = torch.maximum(extent_x, extent_y).clamp_min(1).to(x.dtype) + 1
    fit = (20.0 / extent).clamp(max=1.0)
    mass = img.sum((1, 2)).clamp_min(1e-6)
    grid = idx.to(x.dtype)
    cy = (img.sum(2) * grid).sum(1) / mass
    cx = (img.sum(1) * grid).sum(1) / mass
    return fit, cx, cy


def geometric(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None) -> torch.Tensor:
    """Re-fit to 20×20 + random affine + elastic warp, in a single resampling."""
    n, dev = len(x), x.device
    fit, cx, cy = _fit_box_theta(x)
    angle = _uniform(n, -cfg.rotate_deg, cfg.rotate_deg, gen, dev) * math.pi / 180
    scale = _uniform(n, *cfg.scale, gen, dev) * fit
    aspect = _uniform(n, -cfg.aspect, cfg.aspect, gen, dev)
    sx, sy = scale * (1 + aspect), scale * (1 - aspect / 2)
    shear = _uniform(n, -cfg.shear, cfg.shear, gen, dev)
    shift = _uniform(2 * n, -cfg.shift_px, cfg.shift_px, gen, dev).view(n, 2)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Forward map A (output = A · input) on pixel coordinates around the image centre.
    a11, a12 = sx * cos, sx * (-sin + shear * cos)
    a21, a22 = sy * sin, sy * (cos + shear * sin)
    forward = torch.stack([torch.stack([a11, a12], 1), torch.stack([a21, a22], 1)], 1)
    inverse = torch.linalg.inv(forward)
    centre = (SIZE - 1) / 2
    # Input centre of mass lands at the image centre plus a small shift.
    com = torch.stack([cx, cy], 1)
    target = centre + shift
    offset = com - (inverse @ target.unsqueeze(2)).squeeze(2)
    # affine_grid works in normalised coords in [-1, 1] (align_corners=True: pixel k ↔ -1 + 2k/27).
    half = (SIZE - 1) / 2
    theta_lin = inverse
    theta_off = (
        offset + (inverse @ torch.full((n, 2, 1), half, device=dev)).squeeze(2) - half
    ) / half
    theta = torch.cat([theta_lin, theta_off.unsqueeze(2)], 2)
    grid = F.affine_grid(theta, (n, 1, SIZE, SIZE), align_corners=True)
    elastic = _rand(n, gen, dev) < cfg.p_elastic
    if elastic.any():
        noise = torch.randn(n, 2, 4, 4, generator=gen, device=dev)
        field = F.interpolate(noise, size=(SIZE, SIZE), mode="bicubic", align_corners=True)
        field = field.permute(0, 2, 3, 1) * (cfg.elastic_px / half)
        grid = grid + field * elastic.view(n, 1, 1, 1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _morph(x: torch.Tensor, thicken: bool) -> torch.Tensor:
    return F.max_pool2d(x, 3, 1, 1) if thicken else -F.max_pool2d(-x, 3, 1, 1)


def augment_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: AugmentConfig,
    gen: torch.Generator | None = None,
) -> torch.Tensor:
    """uint8 or float [N, 28, 28] → augmented float [N, 1, 28, 28] in [0, 1]."""
    x = images.float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    if x.dim() == 3:
        x = x.unsqueeze(1)
    n, dev = len(x), x.device
    clean = (_rand(n, gen, dev) < cfg.p_clean).view(n, 1, 1, 1)
    original = x
    x = european_styles(x, labels, cfg.p_euro, gen)
    for thicken, p in ((True, cfg.p_thick), (False, cfg.p_thin)):
        pick = (_rand(n, gen, dev) < p).view(n, 1, 1, 1)
        # Thinning a 2 px stroke fully would erase it: thin by at most 60 %.
        amount = _uniform(n, 0.4, 1.0 if thicken else 0.6, gen, dev).view(n, 1, 1, 1)
        x = torch.where(pick, x + amount * (_morph(x, thicken) - x), x)
    x = geometric(x, cfg, gen)
    blur = (_rand(n, gen, dev) < cfg.p_blur).view(n, 1, 1, 1)
    if blur.any():
        sigma = float(_uniform(1, 0.5, 1.1, gen, dev))
        k = torch.arange(5, device=dev, dtype=x.dtype) - 2
        kernel = torch.exp(-(k**2) / (2 * sigma**2))
        kernel = kernel / kernel.sum()
        blurred = F.conv2d(x, kernel.view(1, 1, 1, 5), padding=(0, 2))
        blurred = F.conv2d(blurred, kernel.view(1, 1, 5, 1), padding=(2, 0))
        x = torch.where(blur, blurred / blurred.amax((2, 3), keepdim=True).clamp_min(0.3), x)
    noisy = (_rand(n, gen, dev) < cfg.p_noise).view(n, 1, 1, 1)
    if noisy.any():
        level = _uniform(n, 0.02, 0.12, gen, dev).view(n, 1, 1, 1)
        noise = torch.randn(x.shape, generator=gen, device=dev) * level
        x = torch.where(noisy, x + noise, x)
    x = torch.where(clean, original, x)
    return x.clamp(0, 1)
