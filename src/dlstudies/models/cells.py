"""Recurrent cells (Elman, LSTM, GRU; optionally normalized), a multi-layer runner over time, and
``recurrent_stack``, which builds ``depth`` layers of any of them behind nn.LSTM's interface.

The gated cells keep PyTorch's equations and parameter layout (weight_ih, weight_hh, bias_ih,
bias_hh; gates i,f,g,o for the LSTM and r,z,n for the GRU) so weights copy over from nn.LSTM /
nn.GRU, and with no norm they compute exactly what those do. Normalization follows layer-normalized
RNNs (Ba, Kiros & Hinton 2016): the input-to-hidden and hidden-to-hidden gate pre-activations
are normalized separately (biases added afterwards), and the LSTM cell state before its tanh.
"""

import functools
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from dlstudies.config.errors import ConfigError
from dlstudies.models.norms import NormFactory, is_batchnorm, is_identity

State = tuple[torch.Tensor, ...]
CELLS = ("rnn", "lstm", "gru")


def recurrent_norms(norm: NormFactory | None) -> tuple[NormFactory, NormFactory]:
    """Split a norm choice into (input-to-hidden norm, recurrent norm) factories.

    BatchNorm only normalizes the input-to-hidden projections, over batch*time at once (Laurent
    et al. 2016): a recurrent BatchNorm would need statistics per time step (Cooijmans et al.
    2016), which do not exist for the longer sequences of generation. Note that in training
    mode those shared statistics see the whole sequence, a small leak of future tokens that
    eval mode (running statistics) does not have. LayerNorm / RMSNorm go everywhere.
    """
    if norm is None or is_identity(norm):
        return nn.Identity, nn.Identity
    if is_batchnorm(norm):
        return norm, nn.Identity
    return norm, norm


class ElmanCell(nn.Module):
    """One Elman step s(t) = f(norm(U_w w(t) + U_s s(t-1) + b)), written by hand.

    The course writes the Elman network as x(t) = w(t) + s(t-1) (the input word joined to the
    previous state), s(t) = f(U x(t)); U applied to the joined vector is the sum of an input
    projection and a recurrent projection, which is how it is computed here. nn.RNN only offers
    tanh or relu and no norm; here the activation and the norm are free, which the activation and
    normalization studies need.
    """

    state_parts = 1

    def __init__(self, input_size: int, hidden_size: int, input_norm: NormFactory = nn.Identity,
                 recurrent_norm: NormFactory = nn.Identity,
                 activation: Callable[[], nn.Module] = nn.Tanh) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.ih = nn.Linear(input_size, hidden_size)
        self.norm_ih = input_norm(hidden_size)  # BatchNorm only, over batch*time
        self.hh = nn.Linear(hidden_size, hidden_size, bias=False)  # ih already carries the bias
        self.norm_hh = recurrent_norm(hidden_size)
        self.act = activation()

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        """U_w w(t) + b for all time steps in one matmul: (B, T, I) -> (B, T, H)."""
        return self.norm_ih(self.ih(x))

    def forward(self, gx: torch.Tensor, state: State) -> State:
        return (self.act(self.norm_hh(gx + self.hh(state[0]))),)


class GatedCell(nn.Module):
    """Parameters shared by the gated cells: ``gates`` stacked projections of input and state."""

    gates: int

    def __init__(self, input_size: int, hidden_size: int, input_norm: NormFactory = nn.Identity,
                 recurrent_norm: NormFactory = nn.Identity) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        stacked = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(stacked, input_size))
        self.weight_hh = nn.Parameter(torch.empty(stacked, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(stacked))
        self.bias_hh = nn.Parameter(torch.empty(stacked))
        # The whole stacked pre-activation is normalized at once, as written in Ba et al.
        self.norm_ih = input_norm(stacked)
        self.norm_hh = recurrent_norm(stacked)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's own init for nn.LSTM / nn.GRU: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))."""
        bound = 1 / math.sqrt(self.hidden_size)
        for weight in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
            nn.init.uniform_(weight, -bound, bound)

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        """Input-to-hidden pre-activations of all steps in one matmul: (B, T, I) -> (B, T, G*H)."""
        return self.norm_ih(F.linear(x, self.weight_ih)) + self.bias_ih

    def project_hidden(self, h: torch.Tensor) -> torch.Tensor:
        """Hidden-to-hidden pre-activations of one step: (B, H) -> (B, G*H)."""
        return self.norm_hh(F.linear(h, self.weight_hh)) + self.bias_hh


class LSTMCell(GatedCell):
    """One LSTM step on a precomputed input projection; state (h, c)."""

    gates, state_parts = 4, 2

    def __init__(self, input_size: int, hidden_size: int, input_norm: NormFactory = nn.Identity,
                 recurrent_norm: NormFactory = nn.Identity) -> None:
        super().__init__(input_size, hidden_size, input_norm, recurrent_norm)
        self.norm_c = recurrent_norm(hidden_size)

    def forward(self, gx: torch.Tensor, state: State) -> State:
        h, c = state
        i, f, g, o = (gx + self.project_hidden(h)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(self.norm_c(c))
        return h, c


class GRUCell(GatedCell):
    """One GRU step on a precomputed input projection; state (h,)."""

    gates, state_parts = 3, 1

    def forward(self, gx: torch.Tensor, state: State) -> State:
        (h,) = state
        x_r, x_z, x_n = gx.chunk(3, dim=-1)
        h_r, h_z, h_n = self.project_hidden(h).chunk(3, dim=-1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)  # the reset gate scales W_hn h + b_hn, as in nn.GRU
        return ((1 - z) * n + z * h,)


class Recurrent(nn.Module):
    """Runs a stack of cells over time, with nn.LSTM / nn.GRU's (batch_first) interface.

    A cell offers ``project_input`` (all steps at once, so only the recurrence loops in Python),
    ``forward(gx_t, state_tuple)``, ``hidden_size`` and ``state_parts``. The state is what the
    fused modules use: a (layers, B, H) tensor, or a tuple of them for the LSTM's (h, c).
    """

    def __init__(self, cells: list[nn.Module], dropout: float = 0.0) -> None:
        super().__init__()
        self.cells = nn.ModuleList(cells)
        self.drop = nn.Dropout(dropout)  # between layers, like nn.LSTM's dropout argument

    def forward(
        self, x: torch.Tensor, state: torch.Tensor | State | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | State]:
        if isinstance(state, torch.Tensor):
            state = (state,)
        finals = []
        for layer, cell in enumerate(self.cells):
            if layer > 0:
                x = self.drop(x)
            if state is None:
                s = tuple(x.new_zeros(x.size(0), cell.hidden_size) for _ in range(cell.state_parts))
            else:
                s = tuple(part[layer] for part in state)
            gx = cell.project_input(x)
            outputs = []
            for t in range(x.size(1)):
                s = cell(gx[:, t], s)
                outputs.append(s[0])
            x = torch.stack(outputs, dim=1)
            finals.append(s)
        stacked = tuple(torch.stack(parts) for parts in zip(*finals))
        return x, stacked if len(stacked) > 1 else stacked[0]


def recurrent_stack(cell: str, input_size: int, hidden_size: int, depth: int, dropout: float = 0.0,
                    norm: NormFactory | None = None, activation: Callable[[], nn.Module] | None = None,
                    bidirectional: bool = False) -> nn.Module:
    """``depth`` layers of ``cell`` (rnn, lstm or gru) behind nn.LSTM's (batch_first) interface;
    ``bidirectional`` (fused cells only) concatenates a backward pass's outputs to the forward's.

    Gated cells without a norm are PyTorch's fused nn.LSTM / nn.GRU (cuDNN on GPU); with a norm
    they are the hand-written cells above. The Elman cell is always hand-written (free
    activation, default tanh). Gated cells fix sigmoid gates and tanh candidates, so an
    activation choice is an error for them.
    """
    if cell not in CELLS:
        raise ConfigError(f"model.net.cell={cell!r} is not allowed; use {', '.join(CELLS)}")
    if cell != "rnn" and activation is not None:
        name = getattr(activation, "func", activation).__name__
        raise ConfigError(f"model={cell} has no free activation (its gates fix sigmoid and tanh); "
                          f"drop activation={name}")
    between = dropout if depth > 1 else 0.0  # fused modules warn on dropout with one layer
    if cell != "rnn" and (norm is None or is_identity(norm)):
        fused = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        return fused(input_size, hidden_size, depth, batch_first=True, dropout=between, bidirectional=bidirectional)
    if bidirectional:
        raise ConfigError(f"model.net.bidirectional=true is not allowed with model.net.cell={cell} and a norm; "
                          "it needs PyTorch's fused gru or lstm (norm=none)")
    make = {"rnn": functools.partial(ElmanCell, activation=activation or nn.Tanh),
            "lstm": LSTMCell, "gru": GRUCell}[cell]
    input_norm, recurrent_norm = recurrent_norms(norm)
    sizes = [input_size] + [hidden_size] * (depth - 1)
    return Recurrent([make(size, hidden_size, input_norm, recurrent_norm) for size in sizes], between)
