"""MNIST-1D (Greydanus 2020): 40-sample 1-D signals of the ten digits, generated offline.

The ``mnist1d`` package's ``make_dataset`` builds the examples from templates (pad, dilate,
scale, shift, noise, shear); its ``get_dataset`` would try a download first, so it is never
called. One pool of ``num_train + num_val + num_test`` examples is generated with the data seed
and cached as ``<data_dir>/mnist1d/mnist1d_<n>_seed<seed>.npz``, then cut in that order.
"""

import random
from pathlib import Path

import numpy as np
import torch
from mnist1d.data import get_dataset_args, make_dataset

from dlstudies.data.classification import ClassificationDataModule
from dlstudies.files import atomic_path

NUM_CLASSES = 10


def generate(num_samples: int, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """``num_samples`` (a multiple of 10) MNIST-1D examples: x (n, 40) float32, y (n,) int64.

    ``make_dataset`` reseeds NumPy's and Python's global generators; their states are restored
    so the run's own seeding is untouched.
    """
    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = num_samples, 1.0, seed
    states = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(states[0])
        random.setstate(states[1])
    return data["x"].astype(np.float32), data["y"].astype(np.int64)


def load_or_generate(num_samples: int, seed: int, data_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The cached pool when it exists, else a freshly generated (and then cached) one."""
    num_samples = -(-num_samples // NUM_CLASSES) * NUM_CLASSES  # whole examples per class
    cache = Path(data_dir).expanduser() / "mnist1d" / f"mnist1d_{num_samples}_seed{seed}.npz"
    if cache.is_file():
        with np.load(cache) as stored:
            return stored["x"], stored["y"]
    x, y = generate(num_samples, seed)
    with atomic_path(cache) as tmp, open(tmp, "wb") as out:  # parallel sweep jobs may generate it at once
        np.savez(out, x=x, y=y)  # to an open file: given a path, savez would append ".npz" to it
    return x, y


class MNIST1DDataModule(ClassificationDataModule):
    """MNIST-1D with ``num_train`` / ``num_val`` / ``num_test`` examples (default 4000/1000/1000).

    ``augment`` applies MNIST-1D's own kinds of transforms to each training batch: a random
    circular shift of up to ``max_shift`` samples and iid Gaussian noise of std ``noise``.
    """

    def __init__(self, data_dir: str = "data", num_train: int = 4000, num_val: int = 1000,
                 num_test: int = 1000, data_seed: int = 42, max_shift: int = 4, noise: float = 0.05,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        for key, value in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"data.{key}={value!r} is not allowed; it must be an integer >= 1")
        self.data_dir, self.data_seed = data_dir, data_seed
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.max_shift, self.noise = max_shift, noise

    def load(self) -> None:
        x, y = load_or_generate(sum(self.sizes.values()), self.data_seed, self.data_dir)
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        start = 0
        for name, size in self.sizes.items():
            self.splits[name] = (x[start : start + size], y[start : start + size])
            start += size
        self.class_names = [str(d) for d in range(NUM_CLASSES)]

    def augment_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Roll every signal by its own random shift in [-max_shift, max_shift], add noise."""
        n, length = x.shape
        shift = torch.randint(-self.max_shift, self.max_shift + 1, (n, 1), device=x.device)
        index = (torch.arange(length, device=x.device) - shift) % length
        return x.gather(1, index) + self.noise * torch.randn_like(x)
