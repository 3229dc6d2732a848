"""A short, real training run (CI budget): plain MNIST, one pass over 30,000 digits."""

from pathlib import Path

import numpy as np
import pytest
import torch

from training.data.augment import AugmentConfig, augment_batch
from training.train import TrainConfig, save_result, train
from vision import DigitClassifier
from vision.model import preprocess


@pytest.mark.slow
def test_short_training_reaches_97_percent(mnist, tmp_path: Path) -> None:
    train_split, test_split = mnist
    config = TrainConfig(epochs=1, batch_size=128, lr=4e-3, augment=False, seed=1)
    result = train(
        config,
        train_split.images[:30000],
        train_split.labels[:30000],
        test_split.images,
        test_split.labels,
        progress=False,
    )
    assert result.test_accuracy >= 0.97, result.history
    path = tmp_path / "short.pt"
    save_result(path, result, version="short")
    clf = DigitClassifier.load(path, device="cpu")
    acc = float((clf.classify(test_split.images).argmax(1) == test_split.labels).mean())
    assert abs(acc - result.test_accuracy) < 1e-3  # folded BN serving matches training eval


@pytest.mark.slow
def test_training_is_reproducible_with_a_seed(mnist) -> None:
    train_split, test_split = mnist
    config = TrainConfig(epochs=1, batch_size=64, augment=True, seed=3)
    runs = [
        train(
            config,
            train_split.images[:640],
            train_split.labels[:640],
            test_split.images[:200],
            test_split.labels[:200],
            progress=False,
        )
        for _ in range(2)
    ]
    for a, b in zip(
        runs[0].model.state_dict().values(), runs[1].model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_augmentation_keeps_shape_range_and_changes_pixels(mnist) -> None:
    train_split, _ = mnist
    images = torch.from_numpy(train_split.images[:256].copy())
    labels = torch.from_numpy(train_split.labels[:256].astype(np.int64))
    gen = torch.Generator().manual_seed(0)
    out = augment_batch(images, labels, AugmentConfig(p_clean=0.0, p_euro=1.0), gen)
    assert out.shape == (256, 1, 28, 28) and out.min() >= 0.0 and out.max() <= 1.0
    plain = images.float().unsqueeze(1) / 255
    assert (out - plain).abs().mean() > 0.02
    # Every digit keeps most of its ink inside the frame.
    assert (out.sum((1, 2, 3)) > 0.3 * plain.sum((1, 2, 3))).all()


def test_european_ones_get_a_flag(mnist) -> None:
    """A flagged 1 gains ink in the upper left of its stroke."""
    from training.data.augment import european_styles

    train_split, _ = mnist
    ones = train_split.images[train_split.labels == 1][:64]
    x = torch.from_numpy(ones.copy()).float().unsqueeze(1) / 255
    labels = torch.ones(64, dtype=torch.int64)
    styled = european_styles(x, labels, 1.0, torch.Generator().manual_seed(0))
    added = (styled - x).clamp(min=0).sum((1, 2, 3))
    assert (added > 1.0).float().mean() > 0.9
    sevens = european_styles(x, torch.full((64,), 7), 0.0, None)
    assert torch.equal(sevens, x)


@pytest.mark.slow
def test_channels_last_trains_like_the_default_layout(mnist) -> None:
    """The CPU's channels-last layout changes the speed, not what is learnt."""
    train_split, test_split = mnist
    results = [
        train(
            TrainConfig(epochs=1, batch_size=64, augment=False, seed=5, channels_last=last),
            train_split.images[:3000],
            train_split.labels[:3000],
            test_split.images[:1000],
            test_split.labels[:1000],
            progress=False,
        )
        for last in (True, False)
    ]
    assert results[0].test_accuracy >= 0.85
    assert abs(results[0].test_accuracy - results[1].test_accuracy) <= 0.02
    # Float rounding differs between the layouts, so the weights drift apart a little over
    # an epoch; what they learnt must not: the two models read the same digits alike.
    images = preprocess(torch.from_numpy(test_split.images[:1000].copy()))
    with torch.inference_mode():
        a, b = (r.model.eval().to(memory_format=torch.contiguous_format) for r in results)
        agree = (a(images).argmax(1) == b(images).argmax(1)).float().mean().item()
    assert agree >= 0.97, agree
