"""A U-Net (Ronneberger et al. 2015) as diffusion models use it (Ho et al. 2020): the noise
predictor of image diffusion.

A contracting path of ``depth`` resolution levels (``width`` channels at the top, times ``widen``
from one level to the next, ``blocks`` residual blocks per level, a stride-2 convolution between
levels), a middle of two residual blocks around self-attention over the lowest level's positions
(the Transformers' ``MultiHeadAttention``, ``heads`` heads), and an expanding path that mirrors it,
nearest-neighbour upsampling between levels, each of its blocks reading the matching contracting
block's output concatenated to its input (the skip connections). Residual blocks are the
convnet's pre-activation layers (GroupNorm -> SiLU -> convolution, twice) with the timestep's
embedding (``embed`` values: an MLP over its sinusoids) and, for a class-conditional net, the
label's embedding added between the two. Images whose sides do not divide by 2^(depth - 1)
(MNIST's 28 at depth 4) are zero-padded to the next multiple and the output cropped back, so
any size works.
"""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlstudies.models.attention import MultiHeadAttention
from dlstudies.models.conv import ConvLayers
from dlstudies.models.embeddings import sinusoids
from dlstudies.models.norms import NormFactory, channel_norm
from dlstudies.models.sizes import check_sizes


class ResidualBlock(nn.Module):
    """Two pre-activation 3x3 convolutions c_in -> c_out, the conditioning embedding added
    between them, plus the input (a 1x1 projection where the channels change)."""

    def __init__(self, build: ConvLayers, c_in: int, c_out: int, embed: int) -> None:
        super().__init__()
        self.first, self.second = build.layer(c_in, c_out), build.layer(c_out, c_out)
        self.condition = nn.Linear(embed, c_out)
        self.shortcut = build.projection(c_in, c_out, 1)

    def forward(self, h: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        inner = self.first(h) + self.condition(embedding)[:, :, None, None]
        return self.shortcut(h) + self.second(inner)


class SpatialAttention(nn.Module):
    """Self-attention among all positions of a (B, C, H, W) map, residual, normalized first."""

    def __init__(self, build: ConvLayers, channels: int, heads: int) -> None:
        super().__init__()
        self.norm = channel_norm(build.norm, channels)
        self.attention = MultiHeadAttention(channels, heads)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, c, height, width = h.shape
        tokens = self.norm(h).flatten(2).transpose(1, 2)  # (B, H * W, C)
        return h + self.attention(tokens).transpose(1, 2).reshape(b, c, height, width)


class UNet(nn.Module):
    """(z (B, [C,] H, W), t (B,), labels (B,) or None) -> predicted noise of z's shape; see the
    module docstring.

    ``in_shape`` (one image's shape, (H, W) or (C, H, W)) and ``num_classes`` come from the data;
    labels equal to ``num_classes`` mean "no label". ``norm`` defaults to GroupNorm with ``groups``
    groups, ``activation`` to SiLU (the config groups' factories replace them).
    """

    def __init__(self, in_shape: Sequence[int], num_classes: int = 0, conditional: bool = False,
                 depth: int = 3, width: int = 32, widen: int = 2, blocks: int = 2, heads: int = 4,
                 embed: int = 128, groups: int = 8, norm: NormFactory | None = None,
                 activation: Callable[[], nn.Module] | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        check_sizes(depth=depth, width=width, widen=widen, blocks=blocks, heads=heads, embed=embed, groups=groups)
        if len(in_shape) not in (2, 3):
            raise ValueError(f"model=unet reads images (H, W) or (C, H, W), not data of shape {tuple(in_shape)}")
        self.in_shape, self.num_classes = tuple(in_shape), num_classes if conditional else 0
        channels = in_shape[0] if len(in_shape) == 3 else 1
        self.multiple = 2 ** (depth - 1)
        build = ConvLayers(2, 3, "pre", norm or (lambda c: nn.GroupNorm(min(groups, c), c)),
                           activation or nn.SiLU, dropout)
        self.time = nn.Sequential(nn.Linear(width, embed), build.activation(), nn.Linear(embed, embed), build.activation())
        self.labels = nn.Embedding(num_classes + 1, embed) if conditional else None
        self.stem = build.conv(channels, width, 3, padding=1)
        sizes = [width * widen**level for level in range(depth)]
        self.down, skips, c = nn.ModuleList(), [width], width
        for level, size in enumerate(sizes):
            for _ in range(blocks):
                self.down.append(ResidualBlock(build, c, size, embed))
                c = size
                skips.append(c)
            if level < depth - 1:
                self.down.append(build.conv(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.middle = nn.ModuleList([ResidualBlock(build, c, c, embed), SpatialAttention(build, c, heads),
                                     ResidualBlock(build, c, c, embed)])
        self.up = nn.ModuleList()
        for level, size in reversed(list(enumerate(sizes))):
            for _ in range(blocks + 1):
                self.up.append(ResidualBlock(build, c + skips.pop(), size, embed))
                c = size
            if level > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), build.conv(c, c, 3, padding=1)))
        self.head = nn.Sequential(*build.after(c), build.conv(c, channels, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)  # the net starts by predicting zero noise (Ho et al.'s code)
        nn.init.zeros_(self.head[-1].bias)

    def embedding(self, t: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The conditioning of every block: the timestep's embedding plus the label's."""
        embedding = self.time(sinusoids(t, self.time[0].in_features))
        if self.labels is not None:
            if labels is None:
                labels = torch.full(t.shape, self.num_classes, device=t.device, dtype=torch.long)
            embedding = embedding + self.labels(labels)
        return embedding

    def forward(self, z: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = z.unsqueeze(1) if len(self.in_shape) == 2 else z
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % self.multiple, -width % self.multiple
        x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        embedding = self.embedding(t, labels)
        h = self.stem(x)
        skips = [h]
        for layer in self.down:
            h = layer(h, embedding) if isinstance(layer, ResidualBlock) else layer(h)
            skips.append(h)
        for layer in self.middle:
            h = layer(h, embedding) if isinstance(layer, ResidualBlock) else layer(h)
        for layer in self.up:
            h = layer(torch.cat([h, skips.pop()], 1), embedding) if isinstance(layer, ResidualBlock) else layer(h)
        out = self.head(h)[..., pad_h // 2 : pad_h // 2 + height, pad_w // 2 : pad_w // 2 + width]
        return out.squeeze(1) if len(self.in_shape) == 2 else out
