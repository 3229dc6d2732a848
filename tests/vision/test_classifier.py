import numpy as np
import pytest

from vision import DigitClassifier


@pytest.fixture(scope="module")
def clf() -> DigitClassifier:
    return DigitClassifier.load(device="cpu")


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
