"""Weight initializations for the ``init`` config group, applied once to a freshly built model.

Each function re-initializes every nn.Linear / nn.Conv / nn.Embedding weight in place and zeroes
biases; layers it does not know (norms, recurrent cells) keep PyTorch's defaults.
"""

import math

import torch
from torch import nn

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _fans(weight: torch.Tensor) -> tuple[int, int]:
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    return fan_in, fan_out


def default(model: nn.Module) -> None:
    """Keep PyTorch's own initialization of every layer."""


def he(model: nn.Module, mode: str = "fan_in", gain: float = math.sqrt(2.0)) -> None:
    """He/Kaiming normal init: std = gain / sqrt(fan), fan = fan_in, fan_out or their mean.

    ``fan_avg`` is the course's compromise variance 4 / (D_k + D_{k+1}) for ReLU (gain^2 = 2).
    """
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(f"init.mode={mode!r} is not allowed; use fan_in, fan_out or fan_avg")
    for module in model.modules():
        if isinstance(module, _WEIGHTED):
            fan_in, fan_out = _fans(module.weight)
            fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
            nn.init.normal_(module.weight, 0.0, gain / math.sqrt(fan))
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def glorot(model: nn.Module, gain: float = 1.0) -> None:
    """Glorot/Xavier uniform init: variance 2 / (fan_in + fan_out)."""
    for module in model.modules():
        if isinstance(module, _WEIGHTED):
            nn.init.xavier_uniform_(module.weight, gain=gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def normal(model: nn.Module, std: float = 0.02) -> None:
    """Every weight ~ N(0, std^2), biases zero: sweep ``init.std`` to see vanishing/exploding signals."""
    if std <= 0:
        raise ValueError(f"init.std={std} is not allowed; it must be > 0")
    for module in model.modules():
        if isinstance(module, (*_WEIGHTED, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
