"""Transformer blocks and the GPT-style decoder-only language model (after karpathy/nanoGPT).

Pre-LN by default (x + sublayer(norm(x)), the order GPT-2 trains stably with); ``post_ln`` gives
the original order x = norm(x + sublayer(x)) for comparison. The norm is any factory: LayerNorm
(default), RMSNorm, Identity, or BatchNorm over features, whose statistics span batch*time so in
training mode they see later tokens (eval mode, with running statistics, stays causal).
"""

import functools
import math
from collections.abc import Callable

import torch
from torch import nn

from dlstudies.models.attention import KVCache, LayerCache, MultiHeadAttention
from dlstudies.models.norms import NormFactory
from dlstudies.models.sizes import check_sizes


class FeedForward(nn.Module):
    """Position-wise feed-forward net, 4x wide, applied to every token independently."""

    def __init__(self, width: int, dropout: float, bias: bool, activation: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.fc = nn.Linear(width, 4 * width, bias=bias)
        self.act = activation()
        self.proj = nn.Linear(4 * width, width, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(self.act(self.fc(x))))


class TransformerBlock(nn.Module):
    """Self-attention (tokens communicate) then feed-forward (tokens compute), each inside a
    residual branch. ``causal`` makes it a decoder block (the GPT's), without it an encoder
    block that sees both sides (BERT's)."""

    def __init__(self, width: int, heads: int, *, causal: bool, dropout: float = 0.0, bias: bool = True,
                 post_ln: bool = False, norm: NormFactory = nn.LayerNorm,
                 activation: Callable[[], nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.post_ln = post_ln
        self.norm_1 = norm(width)
        self.attn = MultiHeadAttention(width, heads, dropout, bias, causal=causal)
        self.norm_2 = norm(width)
        self.mlp = FeedForward(width, dropout, bias, activation)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None,
                cache: LayerCache | None = None) -> torch.Tensor:
        """(B, T, width) -> (B, T, width); ``key_padding_mask`` (B, T) is True at padding;
        ``cache``: the keys and values of the positions before ``x`` (causal blocks)."""
        if self.post_ln:
            x = self.norm_1(x + self.attn(x, key_padding_mask=key_padding_mask, cache=cache))
            return self.norm_2(x + self.mlp(x))
        x = x + self.attn(self.norm_1(x), key_padding_mask=key_padding_mask, cache=cache)
        return x + self.mlp(self.norm_2(x))


def init_gpt_weights(model: nn.Module, depth: int, embeddings: bool = True) -> None:
    """GPT-2's initialization: N(0, 0.02) for linear (and, with ``embeddings``, embedding) weights,
    zero biases, and the residual branches' output projections shrunk by 1/sqrt(2 depth), which
    keeps the residual stream's variance from growing with depth (each block adds two branches)."""
    kinds = (nn.Linear, nn.Embedding) if embeddings else nn.Linear

    def normal_weights(module: nn.Module) -> None:
        if isinstance(module, kinds):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    model.apply(normal_weights)
    for name, param in model.named_parameters():
        if name.endswith("proj.weight"):
            nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * depth))


class DecoderBlock(TransformerBlock):
    """The encoder-decoder's decoder block (fig 12.14): masked self-attention over the target so
    far, cross-attention whose queries come from the decoder and keys and values from the
    encoder's states ``memory``, then the feed-forward net; each inside a residual branch, pre-
    or post-LN as the encoder's blocks."""

    def __init__(self, width: int, heads: int, *, dropout: float = 0.0, bias: bool = True,
                 post_ln: bool = False, norm: NormFactory = nn.LayerNorm,
                 activation: Callable[[], nn.Module] = nn.GELU) -> None:
        super().__init__(width, heads, causal=True, dropout=dropout, bias=bias, post_ln=post_ln, norm=norm,
                         activation=activation)
        self.norm_cross = norm(width)
        self.cross = MultiHeadAttention(width, heads, dropout, bias)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_padding_mask: torch.Tensor | None = None,
                need_weights: bool = False, prefix: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, width) target states and (B, S, width) encoder states -> (B, T, width), and with
        ``need_weights`` the cross-attention weights (B, heads, T, S). ``prefix`` (B, P, width):
        this block's inputs at the P positions before ``x`` (decoding one token at a time), which
        ``x`` attends to as well. Right-padded targets need no mask of their own: a causal query
        never reaches the padding after it."""
        seen = x if prefix is None else torch.cat([prefix, x], 1)
        if self.post_ln:
            x = self.norm_1(x + self.attn(x, None if prefix is None else seen))
        else:
            normed = self.norm_1(seen)
            x = x + self.attn(normed[:, -x.size(1):], None if prefix is None else normed)
        query = x if self.post_ln else self.norm_cross(x)
        read = self.cross(query, memory, key_padding_mask=memory_padding_mask, need_weights=need_weights)
        read, weights = read if need_weights else (read, None)
        x = self.norm_cross(x + read) if self.post_ln else x + read
        x = self.norm_2(x + self.mlp(x)) if self.post_ln else x + self.mlp(self.norm_2(x))
        return x, weights


class TransformerLanguageModel(nn.Module):
    """Token + learned position embeddings, ``depth`` causal TransformerBlocks of ``width`` with
    ``heads`` heads, and a (tied) linear head; GPT-2's N(0, 0.02) initialization."""

    def __init__(self, vocab_size: int, block_size: int = 64, depth: int = 4, heads: int = 4,
                 width: int = 128, dropout: float = 0.0, bias: bool = True, post_ln: bool = False,
                 tie_weights: bool = True, norm: NormFactory | None = None,
                 activation: Callable[[], nn.Module] | None = None) -> None:
        super().__init__()
        check_sizes(block_size=block_size, depth=depth, width=width, heads=heads)
        norm = norm or nn.LayerNorm
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, width)
        self.wpe = nn.Embedding(block_size, width)
        self.drop = nn.Dropout(dropout)
        block = functools.partial(TransformerBlock, width, heads, causal=True, dropout=dropout, bias=bias,
                                  post_ln=post_ln, norm=norm, activation=activation or nn.GELU)
        self.blocks = nn.ModuleList(block() for _ in range(depth))
        # Pre-LN leaves the residual stream unnormalized, so it needs a final norm; post-LN
        # blocks already end with one.
        self.norm_f = nn.Identity() if post_ln else norm(width)
        self.head = nn.Linear(width, vocab_size, bias=False)
        init_gpt_weights(self, depth)
        if tie_weights:
            self.head.weight = self.wte.weight

    def new_cache(self) -> KVCache:
        """An empty key-value cache for ``forward``: generation then feeds only the new tokens."""
        return KVCache(len(self.blocks))

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Logits (B, T, V) for tokens (B, T); with ``cache`` the tokens continue the positions it
        holds (and join them). Positions run up to block_size."""
        start, T = 0 if cache is None else len(cache), idx.size(1)
        if start + T > self.block_size:
            raise ValueError(f"sequence length {start + T} exceeds block_size={self.block_size}; crop the context")
        pos = torch.arange(start, start + T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        layers = [None] * len(self.blocks) if cache is None else cache.layers
        for block, layer in zip(self.blocks, layers):
            x = block(x, cache=layer)
        return self.head(self.norm_f(x))
