"""Multi-head attention for every Transformer: self- or cross-attention, causal or not, with
key padding masks and a key-value cache, over ``F.scaled_dot_product_attention`` (fused kernels
on CPU and GPU)."""

import torch
from torch import nn
from torch.nn import functional as F

from dlstudies.config.errors import ConfigError
from dlstudies.models.sizes import check_sizes


def fused_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                    dropout: float, causal: bool) -> torch.Tensor:
    """``F.scaled_dot_product_attention``, in float32 on a CPU under autocast: PyTorch's CPU kernel
    takes 2.6-4.4x longer (forward and backward) in bfloat16 than in float32 at the course's small
    head sizes (benchmarks/attention_kernels.py), which cancelled the rest of a step's bf16 gain."""
    if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask,
                                                  dropout_p=dropout, is_causal=causal)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=causal)


class LayerCache:
    """The keys and values one self-attention layer has computed so far, (B, heads, S, d) each."""

    def __init__(self) -> None:
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def extend(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """All keys and values so far: the cached ones followed by these new positions'."""
        if self.keys is not None:
            keys, values = torch.cat([self.keys, keys], 2), torch.cat([self.values, values], 2)
        self.keys, self.values = keys, values
        return keys, values


class KVCache:
    """A causal decoder's keys and values of every position it has read, one ``LayerCache`` per
    layer: a generation step then computes only its new token's, and its attention over the cached
    prefix gives what re-reading the whole prefix would (a cache is for one sequence batch)."""

    def __init__(self, layers: int) -> None:
        self.layers = [LayerCache() for _ in range(layers)]

    def __len__(self) -> int:
        """Positions held."""
        keys = self.layers[0].keys
        return 0 if keys is None else keys.size(2)


class MultiHeadAttention(nn.Module):
    """Queries from ``x``; keys and values from ``x`` (self-attention) or from ``memory``
    (cross-attention: a decoder reading its encoder's states).

    ``causal``: query t sees only keys 0..t (a decoder's self-attention). With ``memory`` longer
    than ``x`` the queries are the last positions of the keys (a decoder step over its cached
    prefix): query t of T sees keys 0..S-T+t. The q, k, v projections
    are one (3 width, width) matrix, laid out like nn.MultiheadAttention's ``in_proj_weight``:
    self-attention projects all three in one matmul, cross-attention applies the q rows to ``x``
    and the k, v rows to ``memory``.
    """

    def __init__(self, width: int, heads: int, dropout: float = 0.0, bias: bool = True,
                 causal: bool = False) -> None:
        super().__init__()
        check_sizes(width=width, heads=heads)
        if width % heads:
            raise ConfigError(f"model.net.heads={heads} is not allowed; "
                              f"it must divide model.net.width={width}")
        self.heads, self.dropout, self.causal = heads, dropout, causal
        self.qkv = nn.Linear(width, 3 * width, bias=bias)
        self.proj = nn.Linear(width, width, bias=bias)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = False,
                cache: LayerCache | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(B, T, width) -> (B, T, width); with ``need_weights`` also the attention weights
        (B, heads, T, S), before dropout. ``key_padding_mask`` (B, S) is True at keys that are
        padding (nn.MultiheadAttention's convention); a query with no key left gets zeros.
        ``cache`` (self-attention): ``x`` continues the positions cached there, and joins them."""
        B, T, C = x.shape
        d = C // self.heads
        if memory is None:  # (B, T, 3C) -> three (B, heads, T, d): heads become a batch dimension
            q, k, v = self.qkv(x).view(B, T, 3, self.heads, d).permute(2, 0, 3, 1, 4)
            if cache is not None:
                k, v = cache.extend(k, v)
        else:
            weight_q, weight_kv = self.qkv.weight.split([C, 2 * C])
            bias_q, bias_kv = (None, None) if self.qkv.bias is None else self.qkv.bias.split([C, 2 * C])
            q = F.linear(x, weight_q, bias_q).view(B, T, self.heads, d).transpose(1, 2)
            S = memory.size(1)
            k, v = F.linear(memory, weight_kv, bias_kv).view(B, S, 2, self.heads, d).permute(2, 0, 3, 1, 4)
        mask = self._mask(q.size(2), k.size(2), key_padding_mask, need_weights, x.device)
        drop = self.dropout if self.training else 0.0
        if need_weights:
            y, weights = self._attend_explicitly(q, k, v, mask, drop)
        else:  # no explicit mask for plain causal attention: is_causal lets SDPA skip the masked half
            y = fused_attention(q, k, v, mask, drop, causal=self.causal and mask is None and T == k.size(2))
        y = self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))
        return (y, weights) if need_weights else y

    def _mask(self, T: int, S: int, key_padding_mask: torch.Tensor | None, need_weights: bool,
              device: torch.device) -> torch.Tensor | None:
        """Boolean (B or 1, 1, T, S) mask, True where a query may attend; None when SDPA needs none."""
        mask = None if key_padding_mask is None else ~key_padding_mask[:, None, None, :]
        # SDPA's is_causal aligns query 0 with key 0, so keys beyond the queries need the mask,
        # except for a single query: the last position sees every key
        if self.causal and (mask is not None or need_weights or (T != S and T > 1)):
            causal = torch.ones(T, S, dtype=torch.bool, device=device).tril(S - T)
            mask = causal if mask is None else mask & causal
        return mask

    @staticmethod
    def _attend_explicitly(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                           drop: float) -> tuple[torch.Tensor, torch.Tensor]:
        """What SDPA computes, with the softmax weights kept for attention maps."""
        scores = q @ k.transpose(-2, -1) * q.size(-1) ** -0.5
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = scores.softmax(-1)
        if mask is not None:  # a query whose keys are all masked: zeros, as SDPA gives, not NaN
            weights = weights.masked_fill(~mask, 0.0)
        return F.dropout(weights, drop) @ v, weights
