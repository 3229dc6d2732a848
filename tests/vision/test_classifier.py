import numpy as np
import pytest

from vision import DigitClassifier
from vision.model import DigitNet, ModelConfig, preprocess


@pytest.fixture(scope="module")
def clf() -> DigitClassifier:
    return DigitClassifier.load(device="cpu")


@pytest.mark.slow
def test_shipped_model_on_full_mnist_test(clf: DigitClassifier, mnist) -> None:
    _, test = mnist
    probs = clf.classify(test.images)
    accuracy = float((probs.argmax(1) == test.labels).mean())
    assert accuracy >= 0.9965, f"shipped model: {accuracy:.4%} on MNIST test"


def test_probabilities_shape_dtype_and_sum(clf: DigitClassifier, mnist) -> None:
    _, test = mnist
    probs = clf.classify(test.images[:1000])  # crosses an internal batch boundary
    assert probs.shape == (1000, 10) and probs.dtype == np.float32
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert np.allclose(
        clf.classify(test.images[:3]), probs[:3], atol=1e-5
    )  # batch-size independent
    assert clf.classify(np.zeros((0, 28, 28), np.uint8)).shape == (0, 10)


def test_load_once_reuse_and_versions(clf: DigitClassifier) -> None:
    assert clf.path is not None and clf.path.name == "default.pt"
    assert clf.path.stat().st_size <= 2 * 1024 * 1024
    assert clf.info["preprocessing"] >= 1 and len(clf.sha256) == 64


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 28, 27), np.uint8),
        np.zeros((2, 28, 28), np.float32),
        np.zeros((2, 2, 28, 28), np.uint8),
    ],
)
def test_wrong_input_is_rejected(clf: DigitClassifier, bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="classify expects"):
        clf.classify(bad)


def test_cuda_request_without_cuda_is_clear() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ValueError, match="no CUDA device"):
        DigitClassifier.load(device="cuda")


def _pair_model(bias: float) -> DigitNet:
    """An untrained 11-class network whose "not one digit" output has a given bias."""
    import torch

    torch.manual_seed(0)
    net = DigitNet(ModelConfig(classes=11)).eval()
    with torch.no_grad():
        net.head[-1].bias[10] = bias
    return net


def test_a_pair_class_lowers_the_digit_probabilities(mnist) -> None:
    import torch

    _, test = mnist
    images = test.images[:64]
    net = _pair_model(bias=3.0)
    with torch.no_grad():
        p = torch.softmax(net(preprocess(torch.from_numpy(np.array(images)))), 1).numpy()
    for weight in (1.0, 0.15):
        probs = DigitClassifier.from_model(net, device="cpu", multi_weight=weight).classify(images)
        assert probs.shape == (64, 10)
        # The pair class's evidence counts `weight` times: p_d / (1 - p_pair + w·p_pair).
        expected = p[:, :10] / (1 - p[:, 10:] + weight * p[:, 10:])
        assert np.allclose(probs, expected, atol=1e-5)
        assert (probs.sum(1) < 0.99).all()
    assert (
        DigitClassifier.from_model(net, device="cpu", multi_weight=0.15).classify(images).sum(1)
        > DigitClassifier.from_model(net, device="cpu").classify(images).sum(1)
    ).all()
    with pytest.raises(ValueError, match="multi_weight"):
        DigitClassifier.from_model(net, device="cpu", multi_weight=0.0)


def test_model_config_classes_round_trip(tmp_path) -> None:
    from vision.checkpoint import CheckpointError, save_checkpoint
    from vision.normalize import PREPROCESSING_VERSION

    assert ModelConfig.from_dict({"channels": [8, 16, 32]}).classes == 10  # older checkpoints
    config = ModelConfig(channels=(8, 16, 32), classes=11)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="10 or 11 classes"):
        ModelConfig.from_dict({"classes": 12})
    body = {
        "state_dict": DigitNet(config).state_dict(),
        "model_config": {**config.to_dict(), "classes": 12},
        "preprocessing": PREPROCESSING_VERSION,
    }
    save_checkpoint(tmp_path / "odd.pt", body)
    with pytest.raises(CheckpointError, match=r"odd\.pt: unknown architecture"):
        DigitClassifier.load(tmp_path / "odd.pt", device="cpu")


@pytest.mark.slow
def test_shipped_segmenter_has_a_pair_class(mnist) -> None:
    """The segmenter keeps MNIST's digits and sees two touching digits as no digit."""
    from vision.classifier import SEGMENTER_MODEL_PATH

    seg = DigitClassifier.load(SEGMENTER_MODEL_PATH, device="cpu")
    assert seg.info["model_config"]["classes"] == 11 and 0 < seg.multi_weight < 1
    _, test = mnist
    probs = seg.classify(test.images)
    assert float((probs.argmax(1) == test.labels).mean()) >= 0.995
    assert float(np.median(probs.max(1))) > 0.9
