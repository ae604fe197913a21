"""BERT-style encoder (the course's figures 12.10 and 12.11) and its three heads.

A ``<cls>`` vector starts every sequence, every position attends to every other (the GPT's
blocks with ``causal=False``), and learned positions cover ``<cls>`` plus ``block_size`` tokens.
Inputs are token ids (a corpus's ``vocab_size`` ids, followed by the encoder's own ``<pad>``,
``<cls>`` and ``<mask>``; negative ids, the data's ``IGNORE``, are padding) or, for signals such
as MNIST-1D, ``in_features`` values cut into patches of ``patch`` values, each embedded linearly.

Heads: ``BertMaskedLM`` predicts every position's token through the input embedding matrix
(tied), ``BertClassifier`` classifies the sequence from ``<cls>`` (fig 12.11a), ``BertTagger``
classifies every token (fig 12.11b). Each keeps the encoder as ``encoder``, so a pre-trained
encoder's weights move between them by name.
"""

import functools
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from dlstudies.config.errors import ConfigError
from dlstudies.models.norms import NormFactory
from dlstudies.models.sizes import check_sizes
from dlstudies.models.transformer import TransformerBlock, init_gpt_weights

SPECIALS = ("<pad>", "<cls>", "<mask>")  # ids vocab_size, vocab_size + 1, vocab_size + 2


class TokenEmbedding(nn.Module):
    """Token ids (B, T) -> ``<cls>`` + their vectors (B, 1 + T, width) and the padding (B, 1 + T)."""

    def __init__(self, vocab_size: int, width: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.pad_id, self.cls_id, self.mask_id = (vocab_size + i for i in range(len(SPECIALS)))
        self.table = nn.Embedding(vocab_size + len(SPECIALS), width)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        padding = x < 0
        cls = torch.full_like(x[:, :1], self.cls_id)
        ids = torch.cat([cls, x.masked_fill(padding, self.pad_id)], dim=1)
        return self.table(ids), torch.cat([torch.zeros_like(padding[:, :1]), padding], dim=1)


class PatchEmbedding(nn.Module):
    """Values (B, in_features) -> a learned ``<cls>`` vector, then one linear embedding per patch
    of ``patch`` consecutive values (B, 1 + in_features / patch, width); no padding."""

    def __init__(self, in_features: int, patch: int, width: int) -> None:
        super().__init__()
        check_sizes(patch=patch)
        if in_features % patch:
            raise ConfigError(f"model.net.patch={patch} is not allowed; it must divide the "
                              f"{in_features} input values")
        self.patch, self.tokens = patch, in_features // patch
        self.project = nn.Linear(patch, width)
        self.cls = nn.Parameter(torch.zeros(1, 1, width))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        patches = self.project(x.reshape(len(x), self.tokens, self.patch))
        return torch.cat([self.cls.expand(len(x), -1, -1), patches], dim=1), None


class BertEncoder(nn.Module):
    """An embedding (tokens or patches), learned positions, ``depth`` bidirectional
    TransformerBlocks and, pre-LN, a final norm: (B, T) or (B, in_features) -> (B, 1 + T, width),
    position 0 being ``<cls>``. GPT-2's N(0, 0.02) initialization."""

    def __init__(self, embedding: nn.Module, block_size: int, depth: int = 4, heads: int = 4,
                 width: int = 64, dropout: float = 0.0, bias: bool = True, post_ln: bool = False,
                 norm: NormFactory | None = None, activation: Callable[[], nn.Module] | None = None) -> None:
        super().__init__()
        check_sizes(block_size=block_size, depth=depth, width=width, heads=heads)
        norm = norm or nn.LayerNorm
        self.block_size = block_size
        self.embedding = embedding
        self.wpe = nn.Embedding(1 + block_size, width)
        self.drop = nn.Dropout(dropout)
        block = functools.partial(TransformerBlock, width, heads, causal=False, dropout=dropout, bias=bias,
                                  post_ln=post_ln, norm=norm, activation=activation or nn.GELU)
        self.blocks = nn.ModuleList(block() for _ in range(depth))
        self.norm_f = nn.Identity() if post_ln else norm(width)  # as the GPT: post-LN blocks end normed
        init_gpt_weights(self, depth)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The states (B, 1 + T, width) and the padding mask (B, 1 + T) (None without padding)."""
        h, padding = self.embedding(x)
        if h.size(1) > 1 + self.block_size:
            raise ValueError(f"sequence length {h.size(1) - 1} exceeds block_size={self.block_size}")
        h = self.drop(h + self.wpe(torch.arange(h.size(1), device=h.device)))
        for block in self.blocks:
            h = block(h, key_padding_mask=padding)
        return self.norm_f(h), padding


def token_encoder(vocab_size: int, width: int = 64, **encoder) -> BertEncoder:
    """A BertEncoder over token ids; ``encoder``: BertEncoder's other sizes and options."""
    return BertEncoder(TokenEmbedding(vocab_size, width), width=width, **encoder)


class BertMaskedLM(nn.Module):
    """The encoder and a masked-LM head: a width x width transform (activation, norm), then the
    transposed input embedding matrix (tied) and a bias. Logits (B, T, vocab_size) for every
    token position (``<cls>`` dropped; the encoder's own tokens are never a target)."""

    def __init__(self, vocab_size: int, block_size: int, width: int = 64, **encoder) -> None:
        super().__init__()
        self.encoder = token_encoder(vocab_size, width, block_size=block_size, **encoder)
        self.block_size, self.vocab_size = block_size, vocab_size
        self.mask_id = self.encoder.embedding.mask_id
        activation, norm = encoder.get("activation") or nn.GELU, encoder.get("norm") or nn.LayerNorm
        self.transform = nn.Sequential(nn.Linear(width, width), activation(), norm(width))
        self.decoder = nn.Linear(width, vocab_size + len(SPECIALS))
        self.decoder.weight = self.encoder.embedding.table.weight
        nn.init.zeros_(self.decoder.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.encoder(x)
        return self.decoder(self.transform(h[:, 1:]))[..., : self.vocab_size]


class BertClassifier(nn.Module):
    """The encoder and a linear head on its ``<cls>`` output: (B, T) token ids (``vocab_size``
    and ``block_size`` from the data) or (B, L) values (``in_shape`` = [L]) -> class logits (B, C)."""

    def __init__(self, num_classes: int, vocab_size: int | None = None, in_shape: Sequence[int] | None = None,
                 block_size: int | None = None, patch: int = 1, width: int = 64, **encoder) -> None:
        super().__init__()
        if (vocab_size is None) == (in_shape is None):
            raise ValueError("BertClassifier needs the data's vocab_size (tokens) or in_shape (values)")
        if vocab_size is not None:
            self.encoder = token_encoder(vocab_size, width, block_size=block_size, **encoder)
        else:
            embedding = PatchEmbedding(math.prod(in_shape), patch, width)
            self.encoder = BertEncoder(embedding, embedding.tokens, width=width, **encoder)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.encoder(x)
        return self.head(h[:, 0])


class BertTagger(nn.Module):
    """The encoder and a linear head on every token's output: (B, T) ids -> logits (B, T, C)."""

    def __init__(self, num_classes: int, vocab_size: int, block_size: int, width: int = 64, **encoder) -> None:
        super().__init__()
        self.encoder = token_encoder(vocab_size, width, block_size=block_size, **encoder)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.encoder(x)
        return self.head(h[:, 1:])
