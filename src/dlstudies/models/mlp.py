"""Bengio et al. (2003) MLP language model: embed the n previous tokens, concatenate, MLP."""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dlstudies.models.norms import NormFactory
from dlstudies.models.sizes import check_sizes


class MLPLanguageModel(nn.Module):
    """Predicts token t+1 from tokens t-n+1..t; positions before the start read token 0.

    ``context`` tokens are embedded in ``embed`` dimensions each and concatenated, then ``depth``
    hidden layers of ``width`` units. Each hidden layer is Linear -> norm -> activation -> dropout
    (the course's "add batchnorm" puts the norm between the linear map and the nonlinearity).
    ``direct`` adds Bengio's direct input-to-output connections.
    """

    def __init__(self, vocab_size: int, context: int = 3, embed: int = 24, depth: int = 1, width: int = 256,
                 direct: bool = False, norm: NormFactory | None = None,
                 activation: Callable[[], nn.Module] | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        check_sizes(context=context, embed=embed, depth=depth, width=width)
        norm = norm or nn.Identity
        activation = activation or nn.Tanh
        self.block_size = self.context = context
        self.embedding = nn.Embedding(vocab_size, embed)
        layers: list[nn.Module] = []
        for size in [context * embed] + [width] * (depth - 1):
            layers += [nn.Linear(size, width), norm(width), activation(), nn.Dropout(dropout)]
        self.hidden = nn.Sequential(*layers)
        self.head = nn.Linear(width, vocab_size)
        self.direct = nn.Linear(context * embed, vocab_size, bias=False) if direct else None

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        # Left-pad so every position sees exactly `context` tokens, all at or before itself.
        emb = self.embedding(F.pad(idx, (self.context - 1, 0)))
        windows = emb.unfold(1, self.context, 1).transpose(-1, -2).flatten(2)  # (B, T, n*E)
        logits = self.head(self.hidden(windows))
        return logits if self.direct is None else logits + self.direct(windows)
