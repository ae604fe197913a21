"""Deep fully connected classifiers, plain or residual, with the textbook's two block orders.

``depth`` counts the hidden layers (linear maps into the hidden width); the first one projects
the flattened input to ``width``, the other ``depth - 1`` are blocks width -> width, and a linear
head maps to the classes. ``depth=0`` is the head alone: multinomial logistic regression. With ``order="post"`` a block is Linear -> norm -> activation (the
course's plain network; residual blocks add that to their input). With ``order="pre"`` a block
is norm -> activation -> Linear (He et al. 2016's pre-activation order, the norm inside the
residual branch), and a final norm -> activation comes before the head. ``order="act_norm"`` is
Linear -> activation -> norm: batch norm after the ReLU, which normalises what the next layer
reads without centring the pre-activations at the ReLU's kink (the shattered-gradients study).
"""

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from dlstudies.config.errors import ConfigError
from dlstudies.models.norms import NormFactory
from dlstudies.models.sizes import check_sizes

ORDERS = ("post", "pre")  # the textbook's two orders, which the convnet shares
MLP_ORDERS = (*ORDERS, "act_norm")


class HiddenLayer(nn.Module):
    """One hidden layer of ``width`` units, optionally with a skip connection around it."""

    def __init__(self, width: int, order: str, residual: bool, norm: NormFactory,
                 activation: Callable[[], nn.Module], dropout: float) -> None:
        super().__init__()
        linear = nn.Linear(width, width)
        if order == "pre":
            self.branch = nn.Sequential(norm(width), activation(), nn.Dropout(dropout), linear)
        else:
            self.branch = nn.Sequential(linear, *after_linear(order, width, norm, activation, dropout))
        self.residual = residual

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.branch(h) if self.residual else self.branch(h)


def after_linear(order: str, width: int, norm: NormFactory, activation: Callable[[], nn.Module],
                 dropout: float) -> list[nn.Module]:
    """What follows a linear layer in the ``post`` and ``act_norm`` orders."""
    pair = [norm(width), activation()] if order == "post" else [activation(), norm(width)]
    return [*pair, nn.Dropout(dropout)]


class MLPClassifier(nn.Module):
    """Flattens the input (one example's shape ``in_shape``, or its number of features), then
    ``depth`` hidden layers of ``width`` units, then class logits.

    ``norm`` (a ``norm(num_features)`` factory; default none) and ``activation`` (default ReLU)
    come from the config groups of the same names.
    """

    def __init__(self, in_shape: Sequence[int] | int, num_classes: int, depth: int = 4, width: int = 128,
                 residual: bool = False, order: str = "post", norm: NormFactory | None = None,
                 activation: Callable[[], nn.Module] | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        if order not in MLP_ORDERS:
            raise ConfigError(f"model.net.order={order!r} is not allowed; use {', '.join(MLP_ORDERS)}")
        check_sizes(width=width)
        check_sizes(minimum=0, depth=depth)
        norm, activation = norm or nn.Identity, activation or nn.ReLU
        self.depth, self.residual, self.order = depth, residual, order
        in_features = math.prod(in_shape) if isinstance(in_shape, Sequence) else in_shape
        stem = [nn.Linear(in_features, width)] if depth else []
        if order != "pre" and depth:
            stem += after_linear(order, width, norm, activation, dropout)
        self.stem = nn.Sequential(*stem)
        self.blocks = nn.ModuleList(
            HiddenLayer(width, order, residual, norm, activation, dropout) for _ in range(depth - 1))
        final = [norm(width), activation(), nn.Dropout(dropout)] if order == "pre" and depth else []
        self.head = nn.Sequential(*final, nn.Linear(width if depth else in_features, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x.flatten(1))
        for block in self.blocks:
            h = block(h)
        return self.head(h)
