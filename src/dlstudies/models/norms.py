"""Normalization layers that act on the last (feature) dimension of any shape.

Configs in conf/norm/ are partials called as ``norm(num_features)``; ``torch.nn.Identity``
stands for "no norm" so a model can ask ``is_identity(norm)``.
"""

from collections.abc import Callable

import torch
from torch import nn

NormFactory = Callable[[int], nn.Module]


class BatchNorm(nn.BatchNorm1d):
    """BatchNorm over the last dimension of (..., C) inputs.

    nn.BatchNorm1d wants channels second; sequence models carry (B, T, C), so flatten the
    leading dimensions and normalize every position with the statistics of the whole batch.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        return super().forward(x.reshape(-1, shape[-1])).reshape(shape)


def is_identity(norm: NormFactory) -> bool:
    """True when the factory builds no normalization at all (``norm=none``)."""
    return isinstance(norm(1), nn.Identity)


def is_batchnorm(norm: NormFactory) -> bool:
    """True for batch normalization, which mixes examples and needs care in recurrent nets."""
    return isinstance(norm(1), nn.modules.batchnorm._BatchNorm)
