"""Activations that torch.nn lacks; conf/activation/ holds one option per activation."""

import torch
from torch import nn


class Swish(nn.Module):
    """Swish (Ramachandran et al. 2017; Prince fig 3.13f): x * sigmoid(beta * x).

    beta = 1 is SiLU; beta -> 0 tends to x / 2 and beta -> inf to ReLU. With ``learnable`` beta is
    a parameter of the layer (one per layer, as in the paper), trained with the weights.
    """

    def __init__(self, beta: float = 1.0, learnable: bool = False) -> None:
        super().__init__()
        beta = torch.tensor(float(beta))
        if learnable:
            self.beta = nn.Parameter(beta)
        else:
            self.register_buffer("beta", beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.beta * x)

    def extra_repr(self) -> str:
        return f"beta={float(self.beta):g}, learnable={isinstance(self.beta, nn.Parameter)}"
