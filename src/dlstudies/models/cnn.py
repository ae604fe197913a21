"""Convolutional classifiers for 1-D signals (MNIST-1D) and images (MNIST, Fashion-MNIST), plain or
residual, laid out as He et al. 2016's CIFAR ResNets.

The input's shape picks the convolution: (L,) signals get 1-D convolutions, (H, W) or (C, H, W)
images 2-D ones. A stem convolution maps the input to ``width`` channels; ``stages`` stages of
blocks follow, stage s with ``width * widen**s`` channels, each stage after the first starting
with a stride-2 block; then global average pooling (``head="flatten"`` keeps every position)
and a linear layer. ``depth`` counts the convolutions, all layers but the head, as the MLP's
``depth`` counts its hidden layers: depth 19 and 55 are He et al.'s 20- and 56-layer nets.

A block is ``block_layers`` convolutions of ``models/conv.py`` (``residual``: its input added,
through He et al.'s projection where the shape changes) in either order of the textbook's figure
11.5, as in the MLP (``order``: post or pre); a "pre" net ends with norm -> activation before
pooling.
"""

from collections.abc import Callable, Sequence

import torch
from torch import nn

from dlstudies.config.errors import ConfigError
from dlstudies.models.conv import ConvBlock, ConvLayers, conv_out
from dlstudies.models.mlp_classifier import ORDERS
from dlstudies.models.norms import NormFactory
from dlstudies.models.sizes import check_sizes

HEADS = ("avg", "flatten")


def stage_blocks(blocks: int, stages: int) -> list[int]:
    """``blocks`` spread over ``stages`` as evenly as possible, the remainder to the later (cheaper,
    lower-resolution) stages; a stage left without blocks is skipped."""
    return [blocks // stages + (s >= stages - blocks % stages) for s in range(stages)]


class CNN(nn.Module):
    """Stem convolution, ``stages`` stages of blocks, pooling, linear head (see the module docstring).

    ``in_shape`` is one example's shape from the data: (L,), (H, W) or (C, H, W). ``norm`` and
    ``activation`` (default ReLU) are the config groups' factories, made channel-wise here.
    """

    def __init__(self, in_shape: Sequence[int], num_classes: int, depth: int = 7, width: int = 16,
                 kernel: int = 3, stages: int = 3, widen: int = 2, block_layers: int = 2,
                 stem_stride: int = 1, residual: bool = False, order: str = "post", head: str = "avg",
                 norm: NormFactory | None = None, activation: Callable[[], nn.Module] | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        check_sizes(depth=depth, width=width, kernel=kernel, stages=stages, widen=widen,
                    block_layers=block_layers, stem_stride=stem_stride)
        if order not in ORDERS:
            raise ConfigError(f"model.net.order={order!r} is not allowed; use post or pre")
        if head not in HEADS:
            raise ConfigError(f"model.net.head={head!r} is not allowed; use avg or flatten")
        if (depth - 1) % block_layers:
            raise ConfigError(f"model.net.depth={depth} is not allowed; with model.net.block_layers={block_layers} "
                              f"it must be 1 + a multiple of {block_layers} (the stem, then whole blocks)")
        in_shape = tuple(in_shape)
        if len(in_shape) not in (1, 2, 3):
            raise ValueError(f"inputs of shape {in_shape} are neither (L,) signals nor (H, W) / (C, H, W) images")
        self.channel_dim = 1 if len(in_shape) in (1, 2) else None  # inputs without channels get one
        dims = 1 if len(in_shape) == 1 else 2
        build = ConvLayers(dims, kernel, order, norm, activation or nn.ReLU, dropout)
        stem = build.conv(in_shape[0] if len(in_shape) == 3 else 1, width, kernel, stem_stride, padding=kernel // 2)
        self.stem = nn.Sequential(stem, *build.after(width)) if order == "post" else stem
        positions = [conv_out(n, kernel, stem_stride) for n in in_shape[-dims:]]
        blocks, c_in = [], width
        for s, count in enumerate(stage_blocks((depth - 1) // block_layers, stages)):
            c_out = width * widen**s
            for i in range(count):
                stride = 2 if s > 0 and i == 0 else 1
                blocks.append(ConvBlock(build, c_in, c_out, stride, block_layers, residual))
                positions = [conv_out(n, kernel, stride) for n in positions]
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        final = build.after(c_in) if order == "pre" else []
        pool = [nn.Flatten()] if head == "flatten" else [nn.AdaptiveAvgPool1d(1) if dims == 1 else nn.AdaptiveAvgPool2d(1),
                                                         nn.Flatten()]
        features = c_in * (int(torch.tensor(positions).prod()) if head == "flatten" else 1)
        self.head = nn.Sequential(*final, *pool, nn.Linear(features, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channel_dim is not None:
            x = x.unsqueeze(self.channel_dim)
        return self.head(self.blocks(self.stem(x)))
