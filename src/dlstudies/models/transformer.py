"""GPT-style decoder-only Transformer language model, after karpathy/nanoGPT's model.py.

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
from torch.nn import functional as F

from dlstudies.models.norms import NormFactory


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where each position sees only itself and earlier positions."""

    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool) -> None:
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd={n_embd} must be divisible by n_head={n_head}")
        self.n_head = n_head
        self.dropout = dropout
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=bias)  # all heads' q, k, v in one matmul
        self.proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        # (B, T, 3C) -> three (B, n_head, T, head_dim): heads become a batch dimension, no loop.
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=True)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))


class MLP(nn.Module):
    """Position-wise feed-forward net, 4x wide, applied to every token independently."""

    def __init__(
        self, n_embd: int, dropout: float, bias: bool, activation: Callable[[], nn.Module]
    ) -> None:
        super().__init__()
        self.fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.act = activation()
        self.proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(self.act(self.fc(x))))


class Block(nn.Module):
    """Attention (tokens communicate) then MLP (tokens compute), each inside a residual branch."""

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        dropout: float,
        bias: bool,
        post_ln: bool,
        norm: NormFactory,
        activation: Callable[[], nn.Module],
    ) -> None:
        super().__init__()
        self.post_ln = post_ln
        self.norm_1 = norm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias)
        self.norm_2 = norm(n_embd)
        self.mlp = MLP(n_embd, dropout, bias, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.post_ln:
            x = self.norm_1(x + self.attn(x))
            return self.norm_2(x + self.mlp(x))
        x = x + self.attn(self.norm_1(x))
        return x + self.mlp(self.norm_2(x))


class TransformerLanguageModel(nn.Module):
    """Token + learned position embeddings, a stack of Blocks, and a (tied) linear head."""

    def __init__(
        self,
        vocab_size: int,
        block_size: int = 64,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.0,
        bias: bool = True,
        post_ln: bool = False,
        tie_weights: bool = True,
        norm: NormFactory | None = None,
        activation: Callable[[], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        norm = norm or nn.LayerNorm
        activation = activation or nn.GELU
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        block = functools.partial(Block, n_embd, n_head, dropout, bias, post_ln, norm, activation)
        self.blocks = nn.Sequential(*(block() for _ in range(n_layer)))
        # Pre-LN leaves the residual stream unnormalized, so it needs a final norm; post-LN
        # blocks already end with one.
        self.norm_f = nn.Identity() if post_ln else norm(n_embd)
        self.head = nn.Linear(n_embd, vocab_size, bias=False)
        self.apply(self._init_weights)
        if tie_weights:
            self.head.weight = self.wte.weight
        # Each block adds two residual branches; shrinking their output projections by
        # 1/sqrt(2 n_layer) keeps the residual stream's variance from growing with depth (GPT-2).
        for name, param in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """GPT-2's N(0, 0.02) for linear and embedding weights, zero biases."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) for tokens (B, T), T <= block_size."""
        T = idx.size(1)
        if T > self.block_size:
            raise ValueError(
                f"sequence length {T} exceeds block_size={self.block_size}; crop the context"
            )
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        return self.head(self.norm_f(self.blocks(x)))
