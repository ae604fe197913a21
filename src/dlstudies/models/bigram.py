"""Bigram language model: a learned table of next-token logits, one row per current token."""

import torch
from torch import nn


class BigramLanguageModel(nn.Module):
    """logits(t) = W[idx(t)]: the maximum-likelihood bigram is what gradient descent finds."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.block_size = 1
        self.logits = nn.Embedding(vocab_size, vocab_size)
        nn.init.zeros_(self.logits.weight)  # start from the uniform distribution

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.logits(idx)
