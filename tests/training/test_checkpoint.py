from pathlib import Path

import numpy as np
import pytest
import torch

from training.train import TrainConfig, TrainResult, save_result
from vision import CheckpointError, DigitClassifier
from vision.checkpoint import load_checkpoint, save_checkpoint
from vision.model import DigitNet, ModelConfig


def _result(model: DigitNet) -> TrainResult:
    return TrainResult(
        model=model,
        config=TrainConfig(model=model.config),
        test_accuracy=0.5,
        history=[{"epoch": 1.0, "test_accuracy": 0.5}],
        seconds=1.0,
        seconds_to_target=None,
        train_samples=10,
    )


def test_round_trip_same_predictions_and_plain_values(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = DigitNet(ModelConfig(channels=(8, 16, 16), hidden=32)).eval()
    path = tmp_path / "m.pt"
    sha = save_result(path, _result(net), version="t1", metrics={"mnist_test_accuracy": 0.5})
    raw = torch.load(path, weights_only=True)  # plain values only
    assert raw["model_config"]["channels"] == [8, 16, 16]
    assert raw["version"] == "t1" and isinstance(raw["summary"]["torch"], str)
    clf = DigitClassifier.load(path, device="cpu")
    assert clf.sha256 == sha and clf.version == "t1"
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    with torch.inference_mode():
        from vision.model import preprocess

        expected = torch.softmax(net(preprocess(torch.from_numpy(images))), 1).numpy()
    assert np.allclose(clf.classify(images), expected, atol=1e-5)


def test_write_is_atomic_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    net = DigitNet(ModelConfig(channels=(8, 16, 16), hidden=32))
    save_result(path, _result(net), version="good")
    before = path.read_bytes()
    with pytest.raises(TypeError):
        save_checkpoint(path, {"state_dict": net.state_dict(), "bad": object()})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temp files left behind


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "cannot read checkpoint"),
        (b"not a torch file at all", "cannot read checkpoint"),
    ],
)
def test_bad_checkpoint_files_give_clear_errors(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        DigitClassifier.load(path)


def test_foreign_and_missing_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        DigitClassifier.load(tmp_path / "nope.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a digits checkpoint"):
        load_checkpoint(foreign)
    # A checkpoint whose weights do not fit its declared architecture.
    net = DigitNet(ModelConfig(channels=(8, 16, 16), hidden=32))
    body = {
        "state_dict": net.state_dict(),
        "model_config": {"channels": [8, 16, 32], "hidden": 32},
        "preprocessing": 1,
    }
    save_checkpoint(tmp_path / "mismatch.pt", body)
    with pytest.raises(CheckpointError, match="do not fit"):
        DigitClassifier.load(tmp_path / "mismatch.pt")
