"""Weight initializations for the ``init`` config group, applied once to a freshly built model.

``default`` redraws every layer as PyTorch initializes it. The others re-initialize the weight
matrices of linear, convolutional and recurrent layers in place and zero their biases (``normal``
also draws embeddings); norms keep PyTorch's defaults.
Recurrent layers (nn.LSTM / nn.GRU / nn.RNN and the hand-written cells) stack one matrix per gate
in ``weight_ih`` / ``weight_hh``; each gate is initialized as the layer it is, so its fan_out is
the hidden size, not gates x hidden size.
"""

import math
from collections.abc import Iterator

import torch
from torch import nn

from dlstudies.models.cells import GatedCell

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)
_RECURRENT = (nn.RNNBase, GatedCell)


def _weights(model: nn.Module, embeddings: bool = False) -> Iterator[torch.Tensor]:
    """The weight matrices an init draws (per gate for recurrent layers), zeroing their layers'
    biases on the way."""
    for module in model.modules():
        if isinstance(module, _RECURRENT):
            for name, param in module.named_parameters(recurse=False):
                if name.startswith("bias"):
                    nn.init.zeros_(param)
                elif name.startswith(("weight_ih", "weight_hh")):
                    yield from param.split(module.hidden_size)
                else:  # an LSTM's projection weight_hr: one matrix
                    yield param
        elif isinstance(module, _WEIGHTED) or (embeddings and isinstance(module, nn.Embedding)):
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
            yield module.weight


def default(model: nn.Module) -> nn.Module:
    """Draw every layer afresh as PyTorch's constructors initialize it (``reset_parameters``),
    replacing a model's own scheme (the GPT's N(0, 0.02)); returns the model.

    Layers go in reverse order so that a tied weight ends as its first holder draws it: the
    head that adopted the embedding's matrix resets it before the embedding does.
    """
    for module in reversed(list(model.modules())):
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return model


def he(model: nn.Module, mode: str = "fan_in", gain: float = math.sqrt(2.0)) -> None:
    """He/Kaiming normal init: std = gain / sqrt(fan), fan = fan_in, fan_out or their mean.

    ``fan_avg`` is the course's compromise variance 4 / (D_k + D_{k+1}) for ReLU (gain^2 = 2).
    """
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(f"init.mode={mode!r} is not allowed; use fan_in, fan_out or fan_avg")
    for weight in _weights(model):
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        nn.init.normal_(weight, 0.0, gain / math.sqrt(fan))


def glorot(model: nn.Module, gain: float = 1.0, biases: bool = False) -> None:
    """Glorot/Xavier uniform init: variance 2 / (fan_in + fan_out).

    ``biases``: draw each linear layer's biases from the same distribution as its weights
    instead of zero, as Prince's fig 11.3 (shattered gradients) initialises them.
    """
    for weight in _weights(model):
        nn.init.xavier_uniform_(weight, gain=gain)
    for module in model.modules() if biases else ():
        if isinstance(module, nn.Linear) and module.bias is not None:
            bound = gain * math.sqrt(6.0 / (module.in_features + module.out_features))
            nn.init.uniform_(module.bias, -bound, bound)


def normal(model: nn.Module, std: float = 0.02) -> None:
    """Every weight ~ N(0, std^2), biases zero: sweep ``init.std`` to see vanishing/exploding signals."""
    if std <= 0:
        raise ValueError(f"init.std={std} is not allowed; it must be > 0")
    for weight in _weights(model, embeddings=True):
        nn.init.normal_(weight, 0.0, std)
