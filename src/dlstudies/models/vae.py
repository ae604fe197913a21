"""The encoder and decoder of a variational autoencoder (Kingma & Welling 2014), plain nn.Modules.

The encoder maps an image to the mean and log-variance of q(z|x), a diagonal Gaussian over
``latent`` dimensions; the decoder maps codes z to one value per pixel, the parameter of p(x|z)
that the task (tasks/vae.py) reads as logits or a mean. Two kinds share the sizes ``depth``
(hidden layers, or stride-2 levels, per side), ``width`` (hidden units, or channels of the first
level) and ``latent``:

- ``mlp``: ``depth`` hidden layers of ``width`` units per side, tanh unless the ``activation``
  group says otherwise: Burda et al. 2016's one-stochastic-layer nets are depth 2, width 200,
  latent 50. ``depth=0`` makes both maps linear.
- ``conv``: a stem convolution to ``width`` channels, then ``depth`` stride-2 convolutions that
  double the channels, flattened into a linear map to the code; the decoder mirrors it with a
  linear map, nearest-neighbour upsampling and a convolution per level (no checkerboard of
  transposed convolutions), and a last convolution to the pixels. The layers are the convnets'
  (models/conv.py: "same" padding, conv -> norm -> activation).

``conditional``: both maps also read the class (one-hot), so that samples can be asked for a class
(a conditional VAE, Sohn et al. 2015).
"""

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from dlstudies.config.errors import ConfigError
from dlstudies.models.conv import ConvLayers, conv_out
from dlstudies.models.norms import NormFactory
from dlstudies.models.sizes import check_sizes

KINDS = ("mlp", "conv")


def hidden_layers(sizes: Sequence[int], norm: NormFactory, activation: Callable[[], nn.Module],
                  dropout: float) -> list[nn.Module]:
    """Linear -> norm -> activation -> dropout from each size to the next."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out), norm(n_out), activation(), nn.Dropout(dropout)]
    return layers


class VAENet(nn.Module):
    """Encoder and decoder of a VAE for one example's shape ``in_shape`` ((H, W) or (C, H, W))."""

    def __init__(self, in_shape: Sequence[int], num_classes: int, kind: str = "mlp", depth: int = 2,
                 width: int = 200, latent: int = 50, conditional: bool = False,
                 norm: NormFactory | None = None, activation: Callable[[], nn.Module] | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        check_sizes(width=width, latent=latent)
        check_sizes(minimum=0 if kind == "mlp" else 1, depth=depth)
        if kind not in KINDS:
            raise ConfigError(f"model.net.kind={kind!r} is not allowed; use {' or '.join(KINDS)}")
        self.in_shape, self.latent = tuple(in_shape), latent
        self.classes = num_classes if conditional else 0
        norm, activation = norm or nn.Identity, activation or (nn.Tanh if kind == "mlp" else nn.ReLU)
        build = self._mlp if kind == "mlp" else self._conv
        self.features, features, self.decoder = build(depth, width, norm, activation, dropout)
        self.to_code = nn.Linear(features + self.classes, 2 * latent)

    def _mlp(self, depth: int, width: int, norm: NormFactory, activation: Callable[[], nn.Module],
             dropout: float) -> tuple[nn.Module, int, nn.Module]:
        """Encoder features, their size, decoder: ``depth`` hidden layers each side."""
        pixels, hidden = math.prod(self.in_shape), [width] * depth
        features = nn.Sequential(nn.Flatten(), *hidden_layers([pixels, *hidden], norm, activation, dropout))
        decoder = hidden_layers([self.latent + self.classes, *hidden], norm, activation, dropout)
        size = width if depth else pixels
        return features, size, nn.Sequential(*decoder, nn.Linear(width if depth else self.latent + self.classes, pixels))

    def _conv(self, depth: int, width: int, norm: NormFactory, activation: Callable[[], nn.Module],
              dropout: float) -> tuple[nn.Module, int, nn.Module]:
        """Encoder features, their size, decoder: a stem and ``depth`` stride-2 levels each side."""
        channels, *size = self.in_shape if len(self.in_shape) == 3 else (1, *self.in_shape)
        build = ConvLayers(2, 3, "post", norm, activation, dropout)
        sizes = [tuple(size)]
        for _ in range(depth):
            sizes.append(tuple(conv_out(n, 3, 2) for n in sizes[-1]))
        widths = [width * 2**level for level in range(depth + 1)]
        top = widths[-1] * math.prod(sizes[-1])
        features = [ImageInput(channels), build.layer(channels, width)]
        features += [build.layer(c_in, c_out, stride=2) for c_in, c_out in zip(widths, widths[1:])]
        decoder = [*hidden_layers([self.latent + self.classes, top], norm, activation, 0.0),
                   nn.Unflatten(-1, (widths[-1], *sizes[-1]))]
        for level in reversed(range(depth)):
            decoder += [nn.Upsample(size=sizes[level]), build.layer(widths[level + 1], widths[level])]
        decoder += [build.conv(width, channels, 3, padding=1), nn.Flatten()]
        return nn.Sequential(*features, nn.Flatten()), top, nn.Sequential(*decoder)

    def _with_classes(self, h: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """``h`` with the one-hot classes appended along its last dimension (conditional nets)."""
        if not self.classes:
            return h
        one_hot = nn.functional.one_hot(labels, self.classes).to(h.dtype)
        return torch.cat([h, one_hot.expand(*h.shape[:-1], self.classes)], -1)

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance (B, latent) of q(z|x) for images x (B, *in_shape) in [0, 1]."""
        mean, log_var = self.to_code(self._with_classes(self.features(x), labels)).chunk(2, -1)
        return mean, log_var

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One value per pixel, (*z's leading dims, *in_shape), for codes z (..., latent)."""
        h = self._with_classes(z, labels)
        return self.decoder(h.reshape(-1, h.shape[-1])).view(*z.shape[:-1], *self.in_shape)


class ImageInput(nn.Module):
    """(B, H, W) images as (B, 1, H, W); (B, C, H, W) ones as they are."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.add_channel = channels == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1) if self.add_channel and x.dim() == 3 else x
