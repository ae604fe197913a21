"""GRU language model: fused nn.GRU without a norm, hand-written cells (cells.py) with one."""

from collections.abc import Callable

from torch import nn

from dlstudies.models.cells import GRUCell, gated_recurrent, reject_activation
from dlstudies.models.norms import NormFactory
from dlstudies.models.rnn import RecurrentLanguageModel


class GRULanguageModel(RecurrentLanguageModel):
    """Multi-layer GRU language model; its state is nn.GRU's h, (layers, B, H).

    norm: LayerNorm / RMSNorm give layer-normalized cells (Ba et al. 2016); BatchNorm normalizes
    only the input-to-hidden projections, over batch*time (see cells.recurrent_norms).
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 64,
        hidden: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
        tie_weights: bool = False,
        norm: NormFactory | None = None,
        activation: Callable[[], nn.Module] | None = None,
    ) -> None:
        reject_activation("gru", activation)
        core = gated_recurrent(GRUCell, nn.GRU, embed_dim, hidden, num_layers, dropout, norm)
        super().__init__(vocab_size, embed_dim, hidden, core, dropout, tie_weights)
