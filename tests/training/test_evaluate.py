import json
from pathlib import Path

import numpy as np
import pytest

from digits.cli import main
from training.data.devsets import DevsetError, load_hwd1000, load_usps


def test_devsets_load_normalised(devsets_dir: Path) -> None:
    usps = load_usps(devsets_dir, "test")
    assert usps.images.shape == (2007, 28, 28) and usps.images.dtype == np.uint8
    assert np.bincount(usps.labels, minlength=10).tolist()[:3] == [359, 264, 198]
    hwd = load_hwd1000(devsets_dir)
    assert hwd.images.shape == (1000, 28, 28)
    # Normalised the MNIST way: white ink on black, dark border.
    assert hwd.images[:, 0, :].mean() < 5 and hwd.images.max() == 255


def test_missing_devsets_is_clear(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(DevsetError, match="DIGITS_DEVSETS_DIR"):
        load_usps(tmp_path)


@pytest.mark.slow
def test_evaluate_writes_report_and_plots(
    tmp_path: Path, mnist_dir: Path, devsets_dir: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("DIGITS_MNIST_DIR", str(mnist_dir))
    monkeypatch.setenv("DIGITS_DEVSETS_DIR", str(devsets_dir))
    assert main(["evaluate", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "mnist-test: accuracy" in out and "confusion matrix" in out
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert set(report["sets"]) == {"mnist-test", "usps-test", "hwd1000"}
    mnist = report["sets"]["mnist-test"]
    assert mnist["samples"] == 10000 and len(mnist["per_class"]) == 10
    assert sum(map(sum, mnist["confusion_matrix"])) == 10000
    for name in ("mnist-test", "usps-test", "hwd1000"):
        for kind in ("confusion", "roc", "pr", "worst"):
            png = tmp_path / f"{name}-{kind}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
