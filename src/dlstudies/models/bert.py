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
POSITIONS = ("start", "end", "both")  # what the learned positions count from


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
    position 0 being ``<cls>``. GPT-2's N(0, 0.02) initialization.

    ``positions``: ``start`` counts positions from ``<cls>`` (BERT's); ``end`` from each
    sequence's last real token backwards, so that endings sit at fixed positions whatever the
    length (a name's ending tells most of its sex); ``both`` adds the two (one table each).
    """

    def __init__(self, embedding: nn.Module, block_size: int, depth: int = 4, heads: int = 4,
                 width: int = 64, dropout: float = 0.0, bias: bool = True, post_ln: bool = False,
                 norm: NormFactory | None = None, activation: Callable[[], nn.Module] | None = None,
                 positions: str = "start") -> None:
        super().__init__()
        check_sizes(block_size=block_size, depth=depth, width=width, heads=heads)
        if positions not in POSITIONS:
            raise ConfigError(f"model.net.positions={positions!r} is not allowed; it must be one of "
                              f"{', '.join(POSITIONS)}")
        norm = norm or nn.LayerNorm
        self.block_size, self.width, self.positions = block_size, width, positions
        self.embedding = embedding
        self.wpe = nn.Embedding(1 + block_size, width) if positions != "end" else None
        self.wpe_end = nn.Embedding(1 + block_size, width) if positions != "start" else None
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
        h = self.drop(h + self.position_vectors(h, padding))
        for block in self.blocks:
            h = block(h, key_padding_mask=padding)
        return self.norm_f(h), padding

    def position_vectors(self, h: torch.Tensor, padding: torch.Tensor | None) -> torch.Tensor:
        """The learned position vectors of the states ``h`` (B, T, width): (T, width) counted from
        the start, plus (B, T, width) counted from each row's end (``<cls>`` and padding: 0, the
        last real token: 1)."""
        index = torch.arange(h.size(1), device=h.device)
        vectors = 0 if self.wpe is None else self.wpe(index)
        if self.wpe_end is not None:
            last = h.size(1) - 1 if padding is None else (~padding).sum(1, keepdim=True) - 1  # <cls> is 0
            vectors = vectors + self.wpe_end(torch.where(index == 0, 0, (last + 1 - index).clamp_min(0)))
        return vectors


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
