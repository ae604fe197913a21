"""Image and MNIST-1D data: IDX files made by hand, the data modules, offline generation, caching."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from dlstudies.data import mnist1d
from dlstudies.data.idx import read_idx, write_idx
from dlstudies.data.mnist import FILES, MNISTDataModule
from dlstudies.data.mnist1d import MNIST1DDataModule


def _idx_bytes(code: int, shape: tuple[int, ...], body: bytes) -> bytes:
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + body


@pytest.mark.parametrize("gzipped", [False, True])
def test_read_idx_of_hand_made_files(tmp_path: Path, gzipped: bool) -> None:
    images = _idx_bytes(0x08, (2, 2, 3), bytes(range(12)))
    shorts = _idx_bytes(0x0B, (3,), struct.pack(">3h", -2, 300, 7))
    floats = _idx_bytes(0x0D, (2,), struct.pack(">2f", 1.5, -0.25))
    for name, data in (("images", images), ("shorts", shorts), ("floats", floats)):
        path = tmp_path / name
        path.write_bytes(gzip.compress(data) if gzipped else data)
    assert read_idx(tmp_path / "images").tolist() == np.arange(12).reshape(2, 2, 3).tolist()
    assert read_idx(tmp_path / "images").dtype == np.uint8
    assert read_idx(tmp_path / "shorts").tolist() == [-2, 300, 7]
    assert read_idx(tmp_path / "floats").tolist() == [1.5, -0.25]


def test_read_idx_rejects_bad_files(tmp_path: Path) -> None:
    (tmp_path / "text").write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "text")
    (tmp_path / "short").write_bytes(_idx_bytes(0x08, (4, 4), bytes(10)))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short")


def test_write_idx_round_trips(tmp_path: Path) -> None:
    array = np.random.default_rng(0).integers(0, 255, (5, 4, 3)).astype(np.uint8)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a.gz", array)), array)
    floats = np.linspace(-1, 1, 6).reshape(2, 3)
    assert np.array_equal(read_idx(write_idx(tmp_path / "b", floats)), floats)


def _tiny_mnist(folder: Path, n_train: int = 60, n_test: int = 20) -> None:
    """IDX files of random 'images' whose mean brightness encodes the label."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("test", n_test)):
        labels = np.arange(n) % 10
        images = (rng.random((n, 28, 28)) * 25 * (labels[:, None, None] + 1)).astype(np.uint8)
        write_idx(folder / f"{FILES[prefix + '_images']}.gz", images)
        write_idx(folder / FILES[prefix + "_labels"], labels.astype(np.uint8))  # one not gzipped


def test_mnist_datamodule_reads_local_idx_files(tmp_path: Path) -> None:
    _tiny_mnist(tmp_path / "fashion_mnist")
    data = MNISTDataModule(name="fashion_mnist", data_dir=str(tmp_path), val_size=10, batch_size=8,
                           download=False)
    data.setup("fit")
    assert [len(data.splits[s][0]) for s in ("train", "val", "test")] == [50, 10, 20]
    assert data.splits["train"][0].mean().abs() < 1e-4  # standardised with training statistics
    kwargs = data.model_kwargs()
    assert kwargs["net"] == {"in_shape": [28, 28], "num_classes": 10} and kwargs["class_names"] == data.class_names
    pixels = kwargs["pixels"]  # how a generative model maps its [0, 1] images to these inputs and back
    assert not pixels["binary"] and data.splits["train"][0].std() == pytest.approx(1, abs=1e-3)
    assert (pixels["mean"], pixels["std"]) == pytest.approx(
        (data.grey["train"].float().mean().item() / 255, data.grey["train"].float().std().item() / 255), rel=1e-3)
    assert data.class_names[0] == "T-shirt/top"
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == (8, 28, 28) and y.dtype == torch.long
    assert [len(loader.dataset) for loader in data.val_dataloader()] == [10, 50]


def test_mnist_missing_offline_says_where_to_put_files(tmp_path: Path) -> None:
    data = MNISTDataModule(name="mnist", data_dir=str(tmp_path), download=False)
    with pytest.raises(FileNotFoundError, match=r"put train-images-idx3-ubyte.*mnist"):
        data.setup("fit")
    with pytest.raises(FileNotFoundError, match="data.path="):
        MNISTDataModule(path=str(tmp_path), download=False).setup("fit")


def test_image_augmentation_shifts_each_image() -> None:
    data = MNISTDataModule(max_shift=2)
    x = torch.zeros(64, 28, 28)
    x[:, 10:18, 10:18] = 1.0
    shifted = data.augment_batch(x)
    assert shifted.shape == x.shape
    assert torch.allclose(shifted.sum((1, 2)), x.sum((1, 2)))  # the square stays inside the frame
    assert (shifted != x).any(dim=(1, 2)).float().mean() > 0.5  # most images moved


def test_image_augmentation_flips_half_the_images_only_with_flip() -> None:
    x = torch.randn(400, 28, 28)
    assert torch.equal(MNISTDataModule(max_shift=0).augment_batch(x), x)
    out = MNISTDataModule(max_shift=0, flip=True).augment_batch(x)
    mirrored = (out == x.flip(-1)).all(dim=(1, 2))
    assert (mirrored | (out == x).all(dim=(1, 2))).all()  # each image is itself or its mirror
    assert 0.4 < mirrored.float().mean() < 0.6


def test_mnist1d_generated_offline_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    np.random.seed(123)
    expected_next = np.random.rand()
    np.random.seed(123)
    data = MNIST1DDataModule(data_dir=str(tmp_path), num_train=200, num_val=50, num_test=50)
    data.setup("fit")
    assert np.random.rand() == expected_next  # generation left the global NumPy stream alone
    assert [len(data.splits[s][0]) for s in ("train", "val", "test")] == [200, 50, 50]
    assert data.model_kwargs()["net"] == {"in_shape": [40], "num_classes": 10}
    assert (tmp_path / "mnist1d" / "mnist1d_300_seed42.npz").is_file()

    def no_generation(*args, **kwargs):
        raise AssertionError("generated again instead of reading the cache")

    monkeypatch.setattr(mnist1d, "generate", no_generation)
    again = MNIST1DDataModule(data_dir=str(tmp_path), num_train=200, num_val=50, num_test=50)
    again.setup("fit")
    assert torch.equal(again.splits["test"][0], data.splits["test"][0])


def test_mnist1d_augmentation_rolls_and_adds_noise() -> None:
    data = MNIST1DDataModule(max_shift=3, noise=0.0)
    x = torch.arange(40.0).repeat(16, 1)
    rolled = data.augment_batch(x)
    shifts = {int((row == 0).nonzero()) for row in rolled}
    assert shifts <= set(range(-3, 4)) | {37, 38, 39} and len(shifts) > 1
    assert torch.equal(rolled.sort(1).values, x)


def test_bad_sizes_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="data.num_train=0"):
        MNIST1DDataModule(num_train=0)
    with pytest.raises(ValueError, match="data.name='emnist'"):
        MNISTDataModule(name="emnist")
