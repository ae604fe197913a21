"""k independently initialised copies of one network, evaluated side by side."""

import copy

import torch
from torch import nn

from dlstudies.models import init


class Ensemble(nn.Module):
    """Members that share an architecture, not parameters; ``forward`` stacks their outputs.

    Member 0 is ``net`` itself; the others are copies with their own random initialisation (the
    random stream moves on between members, so each one is a different seed's network). Training
    the sum of the members' losses gives every member exactly the gradient it would get alone.
    """

    def __init__(self, net: nn.Module, k: int) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"regularizer.ensemble={k} is not allowed; it must be an integer >= 1")
        self.members = nn.ModuleList([net] + [init.default(copy.deepcopy(net)) for _ in range(k - 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(k, batch, ...) outputs, one slice per member."""
        return torch.stack([member(x) for member in self.members])
