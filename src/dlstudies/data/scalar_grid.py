"""A scalar input on an evenly spaced grid: the setup of Prince's fig 11.3 (shattered gradients).

The inputs exist to be measured through, not learnt: the shattered-gradients study follows
d output / d x along the grid at initialisation. Two classes (x < 0, x >= 0) make it a
classification data set, so the study's jobs build and step the same classifier nets as on
MNIST-1D. Every split is the whole grid; inputs are standardised like every data set's.
"""

import torch

from dlstudies.data.classification import ClassificationDataModule


class ScalarGridDataModule(ClassificationDataModule):
    """``points`` scalars evenly spaced from ``low`` to ``high``, labelled by their sign."""

    def __init__(self, points: int = 256, low: float = -2.0, high: float = 2.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if points < 2 or not low < high:
            raise ValueError(f"data.points={points}, data.low={low}, data.high={high} are not allowed; "
                             "they need points >= 2 and low < high")
        self.points, self.low, self.high = points, low, high

    def load(self) -> None:
        x = torch.linspace(self.low, self.high, self.points).unsqueeze(1)
        y = (x[:, 0] >= 0).long()
        self.splits = {name: (x, y) for name in ("train", "val", "test")}
        self.class_names = ["x < 0", "x >= 0"]
