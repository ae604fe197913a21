"""Convolution building blocks for any convolutional net (the CNN classifier; next a VAE's
decoder and a U-Net): 1-D or 2-D convolutions with "same" padding, in either order of the
textbook's figure 11.5, with the ``norm``, ``activation`` and dropout options, and blocks of them
with an optional residual shortcut (He et al. 2016).

"post" layers are conv -> norm -> activation; "pre" layers are norm -> activation -> conv (He et
al. 2016b). A residual block adds its input to its output, through a 1x1 convolution where the
stride or channels change (He et al.'s projection).
"""

from collections.abc import Callable

import torch
from torch import nn

from dlstudies.models.norms import NormFactory, channel_norm


class ConvLayers:
    """Builds the layers of one net: its convolution type, order, norm, activation and dropout."""

    def __init__(self, dims: int, kernel: int, order: str, norm: NormFactory | None,
                 activation: Callable[[], nn.Module], dropout: float) -> None:
        self.conv = nn.Conv1d if dims == 1 else nn.Conv2d
        self.kernel, self.order, self.norm, self.activation, self.dropout = kernel, order, norm, activation, dropout

    def after(self, channels: int) -> list[nn.Module]:
        """Norm, activation and dropout over ``channels``."""
        return [channel_norm(self.norm, channels), self.activation(), nn.Dropout(self.dropout)]

    def layer(self, c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
        """One convolution ("same" padding) in the net's order."""
        conv = self.conv(c_in, c_out, self.kernel, stride, padding=self.kernel // 2)
        return nn.Sequential(conv, *self.after(c_out)) if self.order == "post" else nn.Sequential(*self.after(c_in), conv)

    def projection(self, c_in: int, c_out: int, stride: int) -> nn.Module:
        """The shortcut of a residual block: identity, or a 1x1 convolution where the shape changes."""
        return nn.Identity() if c_in == c_out and stride == 1 else self.conv(c_in, c_out, 1, stride)


class ConvBlock(nn.Module):
    """``layers`` convolutions, the first with ``stride``; with ``residual`` the input is added."""

    def __init__(self, build: ConvLayers, c_in: int, c_out: int, stride: int, layers: int, residual: bool) -> None:
        super().__init__()
        self.branch = nn.Sequential(*(build.layer(c_in if i == 0 else c_out, c_out, stride if i == 0 else 1)
                                      for i in range(layers)))
        self.shortcut = build.projection(c_in, c_out, stride) if residual else None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.branch(h)
        return out if self.shortcut is None else out + self.shortcut(h)


def conv_out(n: int, kernel: int, stride: int) -> int:
    """Positions after a "same"-padded convolution with ``stride``."""
    return (n + 2 * (kernel // 2) - kernel) // stride + 1
