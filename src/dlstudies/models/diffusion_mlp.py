"""The noise-predicting MLP of tanelp/tiny-diffusion, for 1-D and 2-D toy data.

Each input coordinate and the timestep t get sinusoidal embeddings of ``embed`` values
(the coordinates scaled by ``input_scale`` first, so that the fast sinusoids resolve the data's
fine structure, as tiny-diffusion does); a class-conditional net (``conditional``) adds a learned
embedding of the label, whose extra last row stands for "no label" (classifier-free guidance).
Their concatenation feeds the residual MLP of ``mlp_classifier``: ``depth`` hidden layers of
``width`` units, every one after the first with a skip connection (tiny-diffusion's 3 residual
blocks of 128 GELU units: depth 4, about 100k parameters in 2-D), then a linear map back to the
data's dimensions.
"""

from collections.abc import Callable, Sequence

import torch
from torch import nn

from dlstudies.config.errors import ConfigError
from dlstudies.models.embeddings import sinusoids
from dlstudies.models.mlp_classifier import MLPClassifier
from dlstudies.models.norms import NormFactory
from dlstudies.models.sizes import check_sizes


class DiffusionMLP(nn.Module):
    """(z (B, dims), t (B,), labels (B,) or None) -> predicted noise (B, dims); see the module docstring.

    ``in_shape`` and ``num_classes`` come from the data; labels equal to ``num_classes`` mean
    "no label". ``norm`` and ``activation`` (default GELU) are the config groups' factories.
    """

    def __init__(self, in_shape: Sequence[int], num_classes: int = 0, conditional: bool = False,
                 depth: int = 4, width: int = 128, embed: int = 128, input_scale: float = 25.0,
                 norm: NormFactory | None = None, activation: Callable[[], nn.Module] | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        check_sizes(depth=depth, width=width, embed=embed)
        if len(in_shape) != 1:
            raise ConfigError(f"model=diffusion_mlp reads points (dims,), not data of shape {tuple(in_shape)}; "
                              "use model=unet for images")
        self.in_shape, self.dims, self.embed, self.input_scale = tuple(in_shape), in_shape[0], embed, input_scale
        self.num_classes = num_classes if conditional else 0
        self.labels = nn.Embedding(num_classes + 1, embed) if conditional else None
        inputs = (self.dims + 1 + conditional) * embed
        self.body = MLPClassifier(inputs, self.dims, depth=depth, width=width, residual=True,
                                  norm=norm, activation=activation or nn.GELU, dropout=dropout)

    def forward(self, z: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        parts = [sinusoids(z * self.input_scale, self.embed).flatten(1), sinusoids(t, self.embed)]
        if self.labels is not None:
            if labels is None:
                labels = torch.full((len(z),), self.num_classes, device=z.device, dtype=torch.long)
            parts.append(self.labels(labels))
        return self.body(torch.cat(parts, 1))
