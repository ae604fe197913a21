"""Bengio et al. (2003) MLP language model: embed the n previous tokens, concatenate, MLP."""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dlstudies.models.norms import NormFactory


class MLPLanguageModel(nn.Module):
    """Predicts token t+1 from tokens t-n+1..t; positions before the start read token 0.

    Each hidden layer is Linear -> norm -> activation -> dropout (the course's "add batchnorm"
    puts the norm between the linear map and the nonlinearity). ``direct`` adds Bengio's direct
    input-to-output connections.
    """

    def __init__(self, vocab_size: int, context: int = 3, embed_dim: int = 24,
                 hidden: tuple[int, ...] = (256,), direct: bool = False,
                 norm: NormFactory | None = None, activation: Callable[[], nn.Module] | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if context < 1:
            raise ValueError(f"model.net.context={context} is not allowed; it must be >= 1")
        norm = norm or nn.Identity
        activation = activation or nn.Tanh
        self.block_size = self.context = context
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        layers: list[nn.Module] = []
        width = context * embed_dim
        for size in hidden:
            layers += [nn.Linear(width, size), norm(size), activation(), nn.Dropout(dropout)]
            width = size
        self.hidden = nn.Sequential(*layers)
        self.head = nn.Linear(width, vocab_size)
        self.direct = nn.Linear(context * embed_dim, vocab_size, bias=False) if direct else None

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        # Left-pad so every position sees exactly `context` tokens, all at or before itself.
        emb = self.embedding(F.pad(idx, (self.context - 1, 0)))
        windows = emb.unfold(1, self.context, 1).transpose(-1, -2).flatten(2)  # (B, T, n*E)
        logits = self.head(self.hidden(windows))
        return logits if self.direct is None else logits + self.direct(windows)
