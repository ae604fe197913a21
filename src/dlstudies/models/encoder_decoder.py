"""The Transformer encoder-decoder (Vaswani et al. 2017; fig 12.13), built from the GPT's blocks.

The encoder is ``depth`` unmasked self-attention blocks over the source (padding masked as keys);
the decoder ``depth`` DecoderBlocks: masked self-attention, cross-attention into the encoder's
states, MLP. Positions are the paper's sinusoids, so any length works; embeddings keep PyTorch's
N(0, 1), which matches the sinusoids' scale, and linear layers get the GPT's N(0, 0.02).
"""

import functools
from collections.abc import Callable

import torch
from torch import nn

from dlstudies.models.embeddings import sinusoids
from dlstudies.models.norms import NormFactory
from dlstudies.models.sizes import check_sizes
from dlstudies.models.transformer import DecoderBlock, TransformerBlock, init_gpt_weights

State = dict[str, torch.Tensor]


class EncoderDecoderTransformer(nn.Module):
    """Source and target embeddings, ``depth`` encoder blocks, ``depth`` decoder blocks of
    ``width`` with ``heads`` heads, and a linear head over the target vocabulary.

    ``encode`` -> state, ``step`` (one new token per row, for decoding) and ``forward`` (teacher
    forcing) give the same logits; the state holds only tensors with the batch first, so a beam
    search reorders it by indexing.
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, depth: int = 2, width: int = 128, heads: int = 4,
                 dropout: float = 0.0, bias: bool = True, post_ln: bool = False, norm: NormFactory | None = None,
                 activation: Callable[[], nn.Module] | None = None) -> None:
        super().__init__()
        check_sizes(depth=depth, width=width, heads=heads)
        norm = norm or nn.LayerNorm
        common = dict(dropout=dropout, bias=bias, post_ln=post_ln, norm=norm, activation=activation or nn.GELU)
        self.src_embedding = nn.Embedding(src_vocab_size, width)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, width)
        self.drop = nn.Dropout(dropout)
        encoder_block = functools.partial(TransformerBlock, width, heads, causal=False, **common)
        self.encoder = nn.ModuleList(encoder_block() for _ in range(depth))
        self.decoder = nn.ModuleList(DecoderBlock(width, heads, **common) for _ in range(depth))
        # Pre-LN leaves each residual stream unnormalized, so each stack ends with a norm.
        self.norm_encoder = nn.Identity() if post_ln else norm(width)
        self.norm_decoder = nn.Identity() if post_ln else norm(width)
        self.head = nn.Linear(width, tgt_vocab_size, bias=False)
        # Embeddings keep PyTorch's N(0, 1): they are added to sinusoids of amplitude 1.
        init_gpt_weights(self, depth, embeddings=False)

    def _embed(self, embedding: nn.Embedding, ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Token embeddings plus the sinusoids of positions ``start``, ``start + 1``, ..."""
        positions = sinusoids(torch.arange(start, start + ids.size(1), device=ids.device), embedding.embedding_dim)
        return self.drop(embedding(ids) + positions)

    def encode(self, src: torch.Tensor, src_pad: torch.Tensor) -> State:
        """Encoder states of source ids (B, S); ``src_pad`` (B, S) is True at padding."""
        x = self._embed(self.src_embedding, src)
        for block in self.encoder:
            x = block(x, key_padding_mask=src_pad)
        state = {"memory": self.norm_encoder(x), "src_pad": src_pad}
        empty = x.new_empty(x.size(0), 0, x.size(2))
        return state | {f"prefix_{i}": empty for i in range(len(self.decoder))}  # each block's inputs so far

    def decode(self, tgt: torch.Tensor, state: State, need_weights: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, V) for target ids (B, T) and, with ``need_weights``, the last block's
        cross-attention weights averaged over heads (B, T, S)."""
        x = self._embed(self.tgt_embedding, tgt)
        weights = None
        for i, block in enumerate(self.decoder):
            last = need_weights and i == len(self.decoder) - 1
            x, weights = block(x, state["memory"], state["src_pad"], need_weights=last)
        return self.head(self.norm_decoder(x)), None if weights is None else weights.mean(1)

    def forward(self, src: torch.Tensor, src_pad: torch.Tensor, tgt: torch.Tensor, need_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: logits (B, T, V) for every target position (and the weights on request)."""
        logits, weights = self.decode(tgt, self.encode(src, src_pad), need_weights)
        return (logits, weights) if need_weights else logits

    def step(self, token: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Logits (B, V) of the token after ``token`` (B,). Only the new position runs through the
        decoder: each block keeps its inputs at the earlier positions in the state, and the new
        position attends to them."""
        x = self._embed(self.tgt_embedding, token[:, None], start=state["prefix_0"].size(1))
        state = dict(state)
        for i, block in enumerate(self.decoder):
            prefix = state[f"prefix_{i}"]
            state[f"prefix_{i}"] = torch.cat([prefix, x], 1)
            x, _ = block(x, state["memory"], state["src_pad"], prefix=prefix)
        return self.head(self.norm_decoder(x))[:, -1], state
