"""RNN encoder-decoder: Sutskever et al. 2014 / Cho et al. 2014 without attention, Bahdanau et al.
2015 (additive) or Luong et al. 2015 (multiplicative) attention over the encoder's states.

The encoder reads the padded source as a packed sequence (PyTorch's fused nn.RNN/GRU/LSTM, so
padding never enters a state, in either direction). ``attention``:

- ``none``: the decoder starts from the encoder's final state and reads that summary again at
  every step (Cho et al.); it has no other path to the source.
- ``bahdanau``: before each step, e_j = v^T tanh(W s_{t-1} + U h_j) scores every encoder state
  h_j against the previous decoder state, the softmax-weighted context c_t joins the input, and
  the output reads [s_t, c_t] (eq. 6; one step at a time, since c_t depends on s_{t-1}).
- ``luong``: the decoder runs first, then s_t^T W h_j scores the encoder states and
  tanh(W_c [c_t, s_t]) feeds the output (the "general" score, no input feeding, so all target
  positions run at once).
"""

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dlstudies.config.errors import ConfigError
from dlstudies.models.cells import CELLS
from dlstudies.models.sizes import check_sizes

ATTENTION = ("none", "bahdanau", "luong")
FUSED = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
State = dict[str, torch.Tensor]


def masked_softmax(scores: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension of (B, ..., S) scores, zero at the padding (B, S)."""
    pad = pad.view(pad.size(0), *([1] * (scores.dim() - 2)), pad.size(1))
    return scores.masked_fill(pad, float("-inf")).softmax(-1)


class Seq2SeqRNN(nn.Module):
    """Embeddings of size ``embed``, a ``depth``-layer ``cell`` encoder (``bidirectional`` or
    not) and decoder with states of size ``width``, and a head over the target vocabulary.

    ``encode`` -> state, ``step`` (one token per row) and ``forward`` (teacher forcing) give the
    same logits; the state holds only batch-first tensors, so a beam search reorders it by indexing.
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, cell: str = "gru", attention: str = "bahdanau",
                 embed: int = 64, width: int = 128, depth: int = 1, bidirectional: bool = True,
                 dropout: float = 0.0) -> None:
        check_sizes(embed=embed, width=width, depth=depth)
        if cell not in CELLS:
            raise ConfigError(f"model.net.cell={cell!r} is not allowed; use {', '.join(CELLS)}")
        if attention not in ATTENTION:
            raise ConfigError(f"model.net.attention={attention!r} is not allowed; use {', '.join(ATTENTION)}")
        super().__init__()
        self.attention, self.lstm = attention, cell == "lstm"
        between = dropout if depth > 1 else 0.0  # fused modules warn on dropout with one layer
        memory = width * (2 if bidirectional else 1)  # size of an encoder state h_j
        self.src_embedding = nn.Embedding(src_vocab_size, embed)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, embed)
        self.drop = nn.Dropout(dropout)
        self.encoder = FUSED[cell](embed, width, depth, batch_first=True, dropout=between,
                                   bidirectional=bidirectional)
        # the encoder's final state (both directions) -> the decoder's first state, per layer
        self.bridge = nn.ModuleList(nn.Linear(memory, width) for _ in range(1 + self.lstm))
        reads_context = attention in ("none", "bahdanau")
        self.decoder = FUSED[cell](embed + memory * reads_context, width, depth, batch_first=True, dropout=between)
        if attention == "bahdanau":
            self.query = nn.Linear(width, width, bias=False)  # W
            self.key = nn.Linear(memory, width)               # U
            self.score = nn.Linear(width, 1, bias=False)      # v
        if attention == "luong":
            self.score = nn.Linear(memory, width, bias=False)  # W of s^T W h
            self.combine = nn.Linear(memory + width, width)     # W_c
        self.head = nn.Linear(width + memory * (attention == "bahdanau"), tgt_vocab_size)

    def encode(self, src: torch.Tensor, src_pad: torch.Tensor) -> State:
        """Source ids (B, S) and padding (B, S, True at padding) -> the decoder's starting state."""
        lengths = (~src_pad).sum(1).cpu()
        packed = pack_padded_sequence(self.drop(self.src_embedding(src)), lengths, batch_first=True,
                                      enforce_sorted=False)
        out, final = self.encoder(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        parts = final if self.lstm else (final,)
        layers, batch = self.decoder.num_layers, src.size(0)
        # (layers * directions, B, width) -> (B, layers, directions * width): each layer's summary
        summaries = [p.view(layers, -1, batch, p.size(-1)).permute(2, 0, 1, 3).flatten(2) for p in parts]
        state = {"memory": memory, "src_pad": src_pad, "summary": summaries[0][:, -1]}
        for name, bridge, summary in zip(("h", "c"), self.bridge, summaries):
            state[name] = torch.tanh(bridge(summary))
        if self.attention == "bahdanau":
            state["keys"] = self.key(memory)  # U h_j: the same at every step, computed once
        return state

    def _run(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """The decoder RNN over inputs (B, T, I) from the state's (B, layers, width) tensors."""
        names = ("h", "c") if self.lstm else ("h",)
        hidden = tuple(state[n].transpose(0, 1).contiguous() for n in names)
        out, hidden = self.decoder(x, hidden if self.lstm else hidden[0])
        hidden = hidden if self.lstm else (hidden,)
        return out, {**state, **{n: h.transpose(0, 1) for n, h in zip(names, hidden)}}

    def _bahdanau_context(self, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        """Context (B, memory) and weights (B, S) for the next step, from the last layer's state."""
        scores = self.score(torch.tanh(self.query(state["h"][:, -1])[:, None] + state["keys"])).squeeze(-1)
        weights = masked_softmax(scores, state["src_pad"])
        return (weights[:, None] @ state["memory"]).squeeze(1), weights

    def decode(self, tgt: torch.Tensor, state: State, need_weights: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor | None, State]:
        """Logits (B, T, V) for target ids (B, T) from ``state``, the attention weights (B, T, S)
        (None without attention) and the state after the last position."""
        emb = self.drop(self.tgt_embedding(tgt))
        if self.attention == "none":
            context = state["summary"][:, None].expand(-1, tgt.size(1), -1)
            out, state = self._run(torch.cat([emb, context], -1), state)
            return self.head(self.drop(out)), None, state
        if self.attention == "luong":
            out, state = self._run(emb, state)
            weights = masked_softmax(out @ self.score(state["memory"]).transpose(1, 2), state["src_pad"])
            attended = torch.tanh(self.combine(torch.cat([weights @ state["memory"], out], -1)))
            return self.head(self.drop(attended)), weights, state
        outputs, all_weights = [], []
        for t in range(tgt.size(1)):  # Bahdanau: each context needs the state before it
            context, weights = self._bahdanau_context(state)
            out, state = self._run(torch.cat([emb[:, t], context], -1)[:, None], state)
            outputs.append(torch.cat([out[:, 0], context], -1))
            all_weights.append(weights)
        return self.head(self.drop(torch.stack(outputs, 1))), torch.stack(all_weights, 1), state

    def forward(self, src: torch.Tensor, src_pad: torch.Tensor, tgt: torch.Tensor, need_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher forcing: logits (B, T, V) for every target position (and the weights on request)."""
        logits, weights, _ = self.decode(tgt, self.encode(src, src_pad), need_weights)
        return (logits, weights) if need_weights else logits

    def step(self, token: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Logits (B, V) of the token after ``token`` (B,), and the state after it."""
        logits, _, state = self.decode(token[:, None], state)
        return logits[:, 0], state

