"""A recurrent classifier: a GRU, LSTM or Elman RNN reads the input one position at a time, and a
linear head maps its final state (or, ``readout="all"``, every step's output) to class logits."""

from collections.abc import Callable, Sequence

import torch
from torch import nn

from dlstudies.config.errors import ConfigError
from dlstudies.models.cells import recurrent_stack
from dlstudies.models.norms import NormFactory
from dlstudies.models.sizes import check_sizes

READOUTS = ("final", "all")


class RNNClassifier(nn.Module):
    """``depth`` layers of ``cell`` (cells.recurrent_stack: rnn, lstm or gru) with a state of
    ``width`` over the steps of ``in_shape``: (T,) signals give one value per step (MNIST-1D),
    (T, F) inputs F values per step (an image read row by row).

    ``readout="final"`` classifies from the top layer's last output; ``"all"`` flattens all T
    outputs into the head, as the MNIST-1D paper's GRU does. ``bidirectional`` adds a backward
    pass (the paper's GRU has one): its final output is the one at step 0. Dropout acts before
    the head.
    """

    def __init__(self, in_shape: Sequence[int], num_classes: int, cell: str = "gru", width: int = 128,
                 depth: int = 1, readout: str = "final", bidirectional: bool = False, dropout: float = 0.0,
                 norm: NormFactory | None = None, activation: Callable[[], nn.Module] | None = None) -> None:
        check_sizes(width=width, depth=depth)
        if readout not in READOUTS:
            raise ConfigError(f"model.net.readout={readout!r} is not allowed; use final or all")
        in_shape = tuple(in_shape)
        if len(in_shape) not in (1, 2):
            raise ValueError(f"inputs of shape {in_shape} are not (T,) or (T, F) sequences")
        core = recurrent_stack(cell, in_shape[1] if len(in_shape) == 2 else 1, width, depth, dropout, norm, activation,
                               bidirectional)
        super().__init__()
        self.core, self.readout, self.per_step, self.width = core, readout, len(in_shape) == 2, width
        self.drop = nn.Dropout(dropout)
        features = width * (2 if bidirectional else 1) * (in_shape[0] if readout == "all" else 1)
        self.head = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.core(x if self.per_step else x.unsqueeze(-1))
        if self.readout == "all":
            features = out.flatten(1)
        else:  # the forward pass ends at the last step, the backward one at step 0
            features = torch.cat([out[:, -1, : self.width], out[:, 0, self.width:]], dim=1)
        return self.head(self.drop(features))
