import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from training.data.mnist import FILES, MnistError, load_mnist, parse_idx


def _idx_images(images: np.ndarray) -> bytes:
    n, h, w = images.shape
    return struct.pack(">HBBIII", 0, 8, 3, n, h, w) + images.tobytes()


def test_parse_idx_images_and_labels() -> None:
    images = np.arange(2 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(2, 28, 28)
    parsed = parse_idx(_idx_images(images))
    assert parsed.shape == (2, 28, 28)
    assert np.array_equal(parsed, images)
    labels = parse_idx(struct.pack(">HBBI", 0, 8, 1, 3) + bytes([7, 2, 1]))
    assert labels.tolist() == [7, 2, 1]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "too short"),
        (struct.pack(">HBBI", 0, 9, 1, 3) + bytes(3), "bad IDX magic"),
        (struct.pack(">HBBI", 0, 8, 1, 5) + bytes(3), "promises 5 bytes"),
        (struct.pack(">HBB", 0, 8, 3) + bytes(4), "truncated"),
    ],
)
def test_parse_idx_rejects_malformed(data: bytes, message: str) -> None:
    with pytest.raises(MnistError, match=message):
        parse_idx(data, name="x")


def test_real_mnist_loads_with_md5(mnist) -> None:
    train, test = mnist
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 28, 28)
    assert test.labels[:8].tolist() == [7, 2, 1, 0, 4, 1, 4, 9]
    assert np.bincount(train.labels, minlength=10).min() > 5000


def test_md5_mismatch_is_a_clear_error(tmp_path: Path, mnist_dir: Path) -> None:
    for name in FILES:
        shutil.copy(mnist_dir / name, tmp_path / name)
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">HBBI", 0, 8, 1, 1) + bytes([3]))
    with pytest.raises(MnistError, match=r"md5 .* does not match"):
        load_mnist(tmp_path, allow_download=False)


def test_missing_directory_names_it(tmp_path: Path) -> None:
    with pytest.raises(MnistError, match=str(tmp_path)) as info:
        load_mnist(tmp_path, allow_download=False)
    assert "DIGITS_MNIST_DIR" in str(info.value)


def test_download_from_a_mirror_and_offline_failure(
    tmp_path: Path, mnist_dir: Path, monkeypatch
) -> None:
    """A local HTTP mirror stands in for torchvision's; a dead one gives a clear error."""
    import functools
    import http.server
    import threading

    import training.data.mnist as mnist_module

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(mnist_dir))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dead = "http://127.0.0.1:9/"
        live = f"http://127.0.0.1:{server.server_address[1]}/"
        monkeypatch.setattr(mnist_module, "MIRRORS", (dead, live))
        train, test = mnist_module.load_mnist(tmp_path / "fresh", allow_download=True)
        assert len(train.labels) == 60000 and len(test.labels) == 10000
        assert sorted(p.name for p in (tmp_path / "fresh").iterdir()) == sorted(FILES)
    finally:
        server.shutdown()
    monkeypatch.setattr(mnist_module, "MIRRORS", ("http://127.0.0.1:9/",))
    with pytest.raises(MnistError, match="downloading failed"):
        mnist_module.load_mnist(tmp_path / "other", allow_download=True)
