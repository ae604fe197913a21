"""Normalization layers that act on the last (feature) dimension of any shape, and their
channel-wise versions for the (B, C, *positions) tensors of convolutional nets.

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


class ChannelBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm of (B, C, *positions) tensors: one mean and variance per channel over the batch
    and every position; nn.BatchNorm1d / 2d / 3d in one, whatever the number of positions."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected a (B, C, ...) input, got {input.dim()} dimensions")


class ChannelsLast(nn.Module):
    """Applies a last-dimension norm to the channels (dimension 1) at every position."""

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.movedim(1, -1)).movedim(-1, 1)


def channel_norm(norm: NormFactory | None, channels: int) -> nn.Module:
    """The ``norm`` choice for a convolution's (B, C, *positions) output.

    batchnorm: statistics per channel over batch and positions (Ioffe & Szegedy's convolutional
    batch norm); layernorm: over all channels and positions of one example (GroupNorm with one
    group, Wu & He 2018); a GroupNorm as it is; any other norm (rmsnorm): over the channels at each
    position.
    """
    built = (norm or nn.Identity)(channels)
    if isinstance(built, nn.modules.batchnorm._BatchNorm):
        return ChannelBatchNorm(channels, built.eps, built.momentum, built.affine, built.track_running_stats)
    if isinstance(built, nn.LayerNorm):
        return nn.GroupNorm(1, channels, built.eps, built.elementwise_affine)
    return built if isinstance(built, (nn.Identity, nn.GroupNorm)) else ChannelsLast(built)
