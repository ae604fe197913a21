"""Toy data whose distribution is known, for generative models: the textbook's 1-D mixture of four
Gaussians (Prince, notebooks 18.1-18.4) and 2-D shapes (moons, eight Gaussians, swiss roll,
circle, checkerboard).

Every shape is scaled to about unit variance per axis, the scale a diffusion model's noise has.
Because the distribution is known, a model's samples can be compared with fresh true samples of
any size (``ToyDataModule.reference``), and, for the Gaussian mixtures, scored by the true log
density. Labels are the mixture component (or moon, or square) a point came from, for
class-conditional models; the swiss roll and the circle have one class.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import make_circles, make_moons, make_swiss_roll

from dlstudies.data.base import TensorDataModule

Points = tuple[torch.Tensor, torch.Tensor]  # x (n, dims) float32, y (n,) int64


class GaussianMixture:
    """A mixture of isotropic Gaussians: ``means`` (K, dims), ``stds`` (K,), ``weights`` (K,)."""

    def __init__(self, means: list, stds: list[float], weights: list[float]) -> None:
        self.means = torch.tensor(means, dtype=torch.float64).reshape(len(stds), -1)
        self.stds, self.weights = torch.tensor(stds, dtype=torch.float64), torch.tensor(weights, dtype=torch.float64)

    def sample(self, n: int, seed: int) -> Points:
        generator = torch.Generator().manual_seed(seed)
        y = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.means.size(1), generator=generator, dtype=torch.float64)
        return (self.means[y] + self.stds[y, None] * noise).float(), y

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) of points (n, dims), in nats."""
        components = torch.distributions.Independent(
            torch.distributions.Normal(self.means, self.stds[:, None].expand_as(self.means)), 1)
        mixture = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(self.weights), components)
        return mixture.log_prob(x.double()).float()


def _moons(n: int, seed: int) -> Points:
    """scikit-learn's two moons (noise 0.05), centred and scaled by 1 / 0.7."""
    x, y = make_moons(n, noise=0.05, random_state=seed)
    return torch.from_numpy((x - [0.5, 0.25]) / 0.7).float(), torch.from_numpy(y)


def _swiss_roll(n: int, seed: int) -> Points:
    """scikit-learn's swiss roll (noise 0.5) seen from above (its x and z), scaled by 1 / 7."""
    x, _ = make_swiss_roll(n, noise=0.5, random_state=seed)
    return torch.from_numpy(x[:, [0, 2]] / 7).float(), torch.zeros(n, dtype=torch.long)


def _circle(n: int, seed: int) -> Points:
    """scikit-learn's outer circle (noise 0.05) alone, radius sqrt(2)."""
    x, _ = make_circles((n, 0), noise=0.05, random_state=seed)
    return torch.from_numpy(x * math.sqrt(2)).float(), torch.zeros(n, dtype=torch.long)


def _checkerboard(n: int, seed: int) -> Points:
    """Uniform on the 8 dark unit squares of a 4 x 4 board on [-2, 2]^2 (FFJORD's toy data);
    labelled by square. scikit-learn has no generator for it."""
    rng = np.random.default_rng(seed)
    column, row = rng.integers(0, 4, n), 2 * rng.integers(0, 2, n)
    row += (column + 1) % 2  # the dark squares alternate from column to column
    x = np.stack([column, row], 1) + rng.random((n, 2)) - 2
    return torch.from_numpy(x).float(), torch.from_numpy(column * 2 + row // 2)


TEXTBOOK_1D = GaussianMixture(means=[1.5, -0.216, 0.45, -1.875], stds=[0.3, 0.15, 0.525, 0.075],
                              weights=[0.2, 0.3, 0.35, 0.15])
_ANGLES = [2 * math.pi * k / 8 for k in range(8)]
EIGHT_GAUSSIANS = GaussianMixture(means=[[math.sqrt(2) * math.cos(a), math.sqrt(2) * math.sin(a)] for a in _ANGLES],
                                  stds=[0.15] * 8, weights=[1 / 8] * 8)


@dataclass(frozen=True)
class Shape:
    """A toy distribution: its dimensions, class names, a seeded sampler and, where known, its log density."""

    dims: int
    classes: list[str]
    sample: Callable[[int, int], Points]
    log_prob: Callable[[torch.Tensor], torch.Tensor] | None = None


SHAPES = {
    "four_gaussians": Shape(1, [f"component {k}" for k in range(4)], TEXTBOOK_1D.sample, TEXTBOOK_1D.log_prob),
    "moons": Shape(2, ["upper moon", "lower moon"], _moons),
    "eight_gaussians": Shape(2, [f"component {k}" for k in range(8)], EIGHT_GAUSSIANS.sample, EIGHT_GAUSSIANS.log_prob),
    "swiss_roll": Shape(2, ["all"], _swiss_roll),
    "circle": Shape(2, ["all"], _circle),
    "checkerboard": Shape(2, [f"square {k}" for k in range(8)], _checkerboard),
}


def stream(*keys: int) -> int:
    """A seed for the random stream named by ``keys``: distinct keys give independent streams."""
    return int(np.random.SeedSequence(keys).generate_state(1)[0])


class ToyDataModule(TensorDataModule):
    """``num_train`` / ``num_val`` / ``num_test`` points of ``shape`` (see ``SHAPES``), drawn with
    ``data_seed`` (each split its own stream); the run's ``seed`` orders the batches."""

    kind = "labelled points"

    def __init__(self, shape: str = "moons", num_train: int = 100000, num_val: int = 10000,
                 num_test: int = 10000, data_seed: int = 0, batch_size: int = 256, seed: int = 0) -> None:
        super().__init__(batch_size, eval_batch_size=10000, seed=seed)
        if shape not in SHAPES:
            raise ValueError(f"data.shape={shape!r} is not an option; allowed: {', '.join(SHAPES)}")
        for key, value in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"data.{key}={value!r} is not allowed; it must be an integer >= 1")
        self.shape, self.distribution, self.data_seed = shape, SHAPES[shape], data_seed
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            self.splits = {split: self.distribution.sample(n, stream(self.data_seed, i))
                           for i, (split, n) in enumerate(self.sizes.items())}

    def reference(self, n: int, seed: int) -> torch.Tensor:
        """``n`` fresh true points (n, dims), independent of the splits and of other seeds'."""
        return self.distribution.sample(n, stream(self.data_seed, len(self.sizes), seed))[0]

    def model_kwargs(self) -> dict:
        """One point's shape and the classes (plain data, stored in checkpoints)."""
        classes = self.distribution.classes
        return {"net": {"in_shape": [self.distribution.dims], "num_classes": len(classes)},
                "class_names": list(classes)}
