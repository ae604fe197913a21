"""MNIST and Fashion-MNIST from the standard IDX files, as 28x28 tensors in memory.

Files are looked up in ``path`` (when given), then ``<data_dir>/<name>/``, then (Fashion-MNIST)
where Debian's ``dataset-fashion-mnist`` package installs them. When none has them, they are
downloaded from the public mirrors, or through Hugging Face ``datasets``, into
``<data_dir>/<name>/``; offline, the error says which files to put where.
"""

import urllib.request
from pathlib import Path

import numpy as np
import torch

from dlstudies.config.errors import ConfigError
from dlstudies.data.classification import ClassificationDataModule, split_off
from dlstudies.data.idx import read_idx, write_idx
from dlstudies.files import write_bytes

FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
MIRRORS = {
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"],
    "fashion_mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}
HF_NAMES = {"mnist": "ylecun/mnist", "fashion_mnist": "zalando-datasets/fashion_mnist"}
SYSTEM_DIRS = {"fashion_mnist": [Path("/usr/share/datasets/fashion-mnist")]}
CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
}
BINARIZE = ("none", "dynamic", "static")
# Seeds of the fixed binarizations, one per split: every run (whatever its seed) sees the same 0/1
# validation and test images, so the likelihoods of different runs compare.
BINARIZE_SEEDS = {"train": 1, "train_eval": 2, "val": 3, "test": 4}


def find_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in ``folder`` (each gzipped or not), or None if any is missing."""
    found = {}
    for key, stem in FILES.items():
        candidates = [folder / f"{stem}.gz", folder / stem]
        match = next((p for p in candidates if p.is_file()), None)
        if match is None:
            return None
        found[key] = match
    return found


def _download_mirror(name: str, folder: Path) -> None:
    errors = []
    for base in MIRRORS[name]:
        try:
            for stem in FILES.values():
                target = folder / f"{stem}.gz"
                if not target.is_file():
                    with urllib.request.urlopen(base + f"{stem}.gz", timeout=30) as response:
                        write_bytes(target, response.read())
            return
        except OSError as error:
            errors.append(f"{base}: {error}")
    raise OSError("; ".join(errors))


def _download_hf(name: str, folder: Path) -> None:
    """Fetch through Hugging Face ``datasets`` and store the standard IDX files."""
    from datasets import load_dataset

    data = load_dataset(HF_NAMES[name])
    for split, prefix in (("train", "train"), ("test", "test")):
        images = np.stack([np.asarray(image, dtype=np.uint8) for image in data[split]["image"]])
        write_idx(folder / f"{FILES[prefix + '_images']}.gz", images)
        write_idx(folder / f"{FILES[prefix + '_labels']}.gz", np.asarray(data[split]["label"], np.uint8))


def locate(name: str, path: str | None, data_dir: str | Path, download: bool = True) -> dict[str, Path]:
    """The IDX files of data set ``name``: found locally, else downloaded into ``data_dir/name``."""
    target = Path(data_dir).expanduser() / name
    folders = ([Path(path).expanduser()] if path else []) + [target] + SYSTEM_DIRS.get(name, [])
    for folder in folders:
        files = find_files(folder)
        if files:
            return files
    if path:
        raise FileNotFoundError(f"data.path={path} does not hold the four {name} IDX files "
                                f"({', '.join(FILES.values())}, optionally .gz)")
    errors = []
    if download:
        for fetch in (_download_mirror, _download_hf):
            try:
                fetch(name, target)
                files = find_files(target)
                if files:
                    return files
            except Exception as error:  # no network, no `datasets`, a mirror gone: try the next
                errors.append(f"{fetch.__name__.strip('_')}: {type(error).__name__}")
    where = " or ".join(str(f) for f in folders)
    raise FileNotFoundError(
        f"{name} is not on this machine and could not be downloaded ({'; '.join(errors) or 'download=false'}); "
        f"put {', '.join(FILES.values())} (optionally .gz) in {where}, or set data.path=<folder>")


class MNISTDataModule(ClassificationDataModule):
    """MNIST or Fashion-MNIST (``name``): 28x28 grey images, 10 classes.

    ``val_size`` training images (chosen with ``seed``) form the validation split;
    ``num_train`` optionally keeps only that many of the rest, for fast studies.
    ``augment`` shifts each training image by up to ``max_shift`` pixels (background fill) and,
    with ``flip``, mirrors half of them left-right (clothes are symmetric, digits are not).

    ``binarize`` turns grey levels into 0/1 pixels drawn with probability = intensity, as the
    likelihood results on MNIST use it: ``static`` draws every split once (a fixed data set);
    ``dynamic`` draws every training batch afresh (Burda et al. 2016) and the validation and test
    images once; fixed draws are seeded per split (``BINARIZE_SEEDS``), the same in every run.
    Binary pixels stay 0/1; grey levels (``none``) are standardised.
    """

    def __init__(self, name: str = "mnist", path: str | None = None, data_dir: str = "data",
                 val_size: int = 5000, num_train: int | None = None, max_shift: int = 2,
                 flip: bool = False, binarize: str = "none", download: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        if name not in CLASS_NAMES:
            raise ValueError(f"data.name={name!r} is not allowed; use {' or '.join(CLASS_NAMES)}")
        if binarize not in BINARIZE:
            raise ConfigError(f"data.binarize={binarize!r} is not allowed; use {', '.join(BINARIZE)}")
        self.name, self.path, self.data_dir, self.download = name, path, data_dir, download
        self.val_size, self.num_train, self.max_shift, self.flip = val_size, num_train, max_shift, flip
        self.binarize, self.standardize = binarize, binarize == "none"
        self.grey: dict[str, torch.Tensor] = {}  # each split's 0-255 images, kept for images()

    def load(self) -> None:
        files = locate(self.name, self.path, self.data_dir, self.download)
        arrays = {key: torch.from_numpy(read_idx(file).copy()) for key, file in files.items()}
        x, y = arrays["train_images"].float(), arrays["train_labels"].long()
        train, val = split_off(x, y, self.val_size, self.seed)
        if self.num_train is not None:
            train = (train[0][: self.num_train], train[1][: self.num_train])
        test = (arrays["test_images"].float(), arrays["test_labels"].long())
        self.splits = {"train": train, "val": val, "test": test}
        self.grey = {name: x.to(torch.uint8) for name, (x, _) in self.splits.items()}
        if self.binarize != "none":
            self.splits = self._binarized(self.splits)
        self.class_names = CLASS_NAMES[self.name]

    def _binarized(self, splits: dict[str, tuple]) -> dict[str, tuple]:
        """The splits' 0-255 grey levels as seeded 0/1 draws; under ``dynamic`` the training split
        keeps its intensities in [0, 1] for fresh draws per batch, and a drawn copy of its first
        ``train_eval_size`` images is what validation evaluates."""
        def drawn(name: str, x: torch.Tensor) -> torch.Tensor:
            return torch.bernoulli(x / 255, generator=torch.Generator().manual_seed(BINARIZE_SEEDS[name]))

        out = {name: (drawn(name, x), y) for name, (x, y) in splits.items()}
        if self.binarize == "dynamic":
            x, y = splits["train"]
            n = self.train_eval_size
            out["train"], out["train_eval"] = (x / 255, y), (drawn("train_eval", x[:n]), y[:n])
        return out

    def model_kwargs(self) -> dict:
        """The classifier's kwargs and how pixels reach the model (``pixels``): 0/1 (``binary``), or
        grey levels standardised as (intensity in [0, 1] - ``mean``) / ``std``; generative models
        and the sample-quality metric map images in [0, 1] to inputs and back with them."""
        mean, std = self.stats
        pixels = ({"binary": True, "mean": 0.0, "std": 1.0} if self.binarize != "none"
                  else {"binary": False, "mean": mean / 255, "std": std / 255})
        return super().model_kwargs() | {"pixels": pixels}

    def images(self, split: str) -> torch.Tensor:
        """The split's images (N, 1, H, W) as grey levels in [0, 1], binarized or not: the real
        images that generated ones are compared with (a Bernoulli model's mean image is a grey level)."""
        return self.grey[split].unsqueeze(1).float() / 255

    def on_after_batch_transfer(self, batch: tuple, dataloader_idx: int) -> tuple:
        x, y = super().on_after_batch_transfer(batch, dataloader_idx)
        if self.binarize == "dynamic" and self.trainer is not None and self.trainer.training:
            x = torch.bernoulli(x)  # a fresh binarization of every training batch
        return x, y

    def augment_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Shift every image by its own random (dy, dx) in [-max_shift, max_shift], background-filled;
        with ``flip``, read half of the images' columns right to left."""
        s = self.max_shift
        n, h, w = x.shape
        padded = torch.nn.functional.pad(x, (s, s, s, s), value=float(x.min()))
        dy, dx = torch.randint(0, 2 * s + 1, (2, n, 1, 1), device=x.device)
        rows = torch.arange(h, device=x.device).view(1, h, 1) + dy
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        if self.flip:
            mirrored = torch.rand(n, 1, 1, device=x.device) < 0.5
            cols = torch.where(mirrored, cols.flip(-1), cols)
        return padded[torch.arange(n, device=x.device).view(n, 1, 1), rows, cols + dx]
