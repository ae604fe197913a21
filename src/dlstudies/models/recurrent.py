"""One recurrent language model whatever the cell: embedding -> stacked cells -> linear head."""

from collections.abc import Callable

import torch
from torch import nn

from dlstudies.models.cells import State, recurrent_stack
from dlstudies.models.norms import NormFactory
from dlstudies.models.sizes import check_sizes


class RecurrentLanguageModel(nn.Module):
    """Token embeddings of size ``embed``, ``depth`` layers of ``cell`` (rnn, lstm or gru; see
    cells.recurrent_stack) with a state of size ``width``, and a linear head.

    ``step`` carries the state (nn.LSTM's (h, c), else h, each (depth, B, width)) so generation
    can feed one token at a time; ``forward`` is a step from the zero state. Dropout acts on the
    embeddings and before the head (the stack drops between its layers). norm: LayerNorm /
    RMSNorm give layer-normalized cells (Ba et al. 2016); BatchNorm normalizes only the
    input-to-hidden projections, over batch*time (see cells.recurrent_norms).
    """

    def __init__(self, vocab_size: int, cell: str = "lstm", embed: int = 64, width: int = 128, depth: int = 1,
                 dropout: float = 0.0, tie_weights: bool = False, norm: NormFactory | None = None,
                 activation: Callable[[], nn.Module] | None = None) -> None:
        check_sizes(embed=embed, width=width, depth=depth)
        core = recurrent_stack(cell, embed, width, depth, dropout, norm, activation)
        super().__init__()
        self.block_size = None  # the state summarizes any context, so generation never crops it
        self.embedding = nn.Embedding(vocab_size, embed)
        self.core = core
        self.drop = nn.Dropout(dropout)
        # Tied output weights live in embedding space, so a larger state is projected down to it.
        untied_proj = tie_weights and width != embed
        self.proj = nn.Linear(width, embed, bias=False) if untied_proj else nn.Identity()
        self.head = nn.Linear(embed if tie_weights else width, vocab_size)
        if tie_weights:
            self.head.weight = self.embedding.weight

    def step(self, idx: torch.Tensor, state: torch.Tensor | State | None = None
             ) -> tuple[torch.Tensor, torch.Tensor | State]:
        """Logits (B, T, V) for tokens (B, T) continuing from ``state``, and the new state."""
        out, state = self.core(self.drop(self.embedding(idx)), state)
        return self.head(self.proj(self.drop(out))), state

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) for tokens (B, T), starting from the zero state."""
        return self.step(idx)[0]
