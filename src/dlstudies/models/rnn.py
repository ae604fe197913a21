"""Elman RNN language model, and the embedding -> recurrence -> head shell all recurrent LMs share.

The course writes the Elman network as x(t) = w(t) + s(t-1) (the input word joined to the
previous state), s(t) = f(U x(t)), y(t) = g(V s(t)). U applied to the joined vector is the sum of
an input projection and a recurrent projection, which is how it is computed here.
"""

from collections.abc import Callable

import torch
from torch import nn

from dlstudies.models.cells import Recurrent, State, recurrent_norms
from dlstudies.models.norms import NormFactory


class RecurrentLanguageModel(nn.Module):
    """Token embedding, a recurrent core with nn.LSTM's interface, and a linear head.

    ``step`` carries the core's state so generation can feed one token at a time; ``forward`` is
    a step from the zero state. Dropout acts on the embeddings and before the head (the core
    drops between its layers).
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden: int,
        core: nn.Module,
        dropout: float = 0.0,
        tie_weights: bool = False,
    ) -> None:
        super().__init__()
        self.block_size = None  # the state summarizes any context, so generation never crops it
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.core = core
        self.drop = nn.Dropout(dropout)
        # Tied output weights live in embedding space, so a larger state is projected down to it.
        untied_proj = tie_weights and hidden != embed_dim
        self.proj = nn.Linear(hidden, embed_dim, bias=False) if untied_proj else nn.Identity()
        self.head = nn.Linear(embed_dim if tie_weights else hidden, vocab_size)
        if tie_weights:
            self.head.weight = self.embed.weight

    def step(
        self, idx: torch.Tensor, state: torch.Tensor | State | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | State]:
        """Logits (B, T, V) for tokens (B, T) continuing from ``state``, and the new state."""
        out, state = self.core(self.drop(self.embed(idx)), state)
        return self.head(self.proj(self.drop(out))), state

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) for tokens (B, T), starting from the zero state."""
        return self.step(idx)[0]


class ElmanCell(nn.Module):
    """One Elman step s(t) = f(norm(U_w w(t) + U_s s(t-1) + b)), written by hand.

    nn.RNN only offers tanh or relu and no norm; here the activation and the norm of the
    pre-activation are free, which the activation and normalization studies need.
    """

    state_parts = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        norm: NormFactory | None,
        activation: Callable[[], nn.Module],
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        input_norm, recurrent_norm = recurrent_norms(norm)
        self.ih = nn.Linear(input_size, hidden_size)
        self.norm_ih = input_norm(hidden_size)  # BatchNorm only, over batch*time
        self.hh = nn.Linear(hidden_size, hidden_size, bias=False)  # ih already carries the bias
        self.norm = recurrent_norm(hidden_size)
        self.act = activation()

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        """U_w w(t) + b for all time steps in one matmul: (B, T, I) -> (B, T, H)."""
        return self.norm_ih(self.ih(x))

    def forward(self, gx: torch.Tensor, state: State) -> State:
        return (self.act(self.norm(gx + self.hh(state[0]))),)


class RNNLanguageModel(RecurrentLanguageModel):
    """Multi-layer Elman RNN language model (activation default tanh, no norm by default)."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 64,
        hidden: int = 128,
        num_layers: int = 1,
        norm: NormFactory | None = None,
        activation: Callable[[], nn.Module] | None = None,
        dropout: float = 0.0,
    ) -> None:
        activation = activation or nn.Tanh
        sizes = [embed_dim] + [hidden] * (num_layers - 1)
        core = Recurrent([ElmanCell(size, hidden, norm, activation) for size in sizes], dropout)
        super().__init__(vocab_size, embed_dim, hidden, core, dropout)
