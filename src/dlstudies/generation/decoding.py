"""Greedy and beam-search decoding, batched, for any encoder-decoder with ``encode(src, src_pad)``
-> state and ``step(token, state)`` -> (logits, state), whose state tensors are batch-first.

Both stop once every row has emitted ``<eos>`` (or after ``max_len`` tokens); rows that ended
are padded. Scores are summed log-probabilities divided by length ** ``length_penalty`` (the
length counts the ``<eos>``); ``length_penalty=0`` ranks by the plain sum.
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Specials:
    """The target vocabulary's special ids: decoding starts with ``bos``, stops at ``eos``, pads
    ended rows with ``pad`` and never emits ``pad`` or ``bos`` itself."""

    pad: int
    bos: int
    eos: int


def _log_probs(logits: torch.Tensor, specials: Specials) -> torch.Tensor:
    """Log-probabilities (N, V) of the next token, with ``pad`` and ``bos`` ruled out."""
    logits = logits.float().clone()
    logits[:, [specials.pad, specials.bos]] = float("-inf")
    return logits.log_softmax(-1)


@torch.no_grad()
def greedy(net: nn.Module, src: torch.Tensor, src_pad: torch.Tensor, specials: Specials, max_len: int,
           length_penalty: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The most likely token at every step: ids (B, <= max_len) and scores (B,)."""
    state = net.encode(src, src_pad)
    token = torch.full((src.size(0),), specials.bos, dtype=torch.long, device=src.device)
    done = torch.zeros_like(token, dtype=torch.bool)
    total, length, out = torch.zeros(src.size(0), device=src.device), torch.zeros_like(token), []
    for _ in range(max_len):
        logits, state = net.step(token, state)
        log_probs = _log_probs(logits, specials)
        best, token = log_probs.max(-1)
        total += best.masked_fill(done, 0.0)
        length += ~done
        token = token.masked_fill(done, specials.pad)
        out.append(token)
        done |= token == specials.eos
        if done.all():
            break
    return torch.stack(out, 1), total / length.clamp_min(1) ** length_penalty


@torch.no_grad()
def beam_search(net: nn.Module, src: torch.Tensor, src_pad: torch.Tensor, specials: Specials, max_len: int,
                beam_size: int = 4, length_penalty: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The best of ``beam_size`` hypotheses kept per row: ids (B, <= max_len) and scores (B,).

    All B x K hypotheses advance as one batch. An ended hypothesis stays in its beam with its
    score, continued by ``pad`` at no cost, so it competes with the live ones until the end,
    where length-normalized scores pick the best.
    """
    B, K = src.size(0), beam_size
    state = net.encode(src.repeat_interleave(K, 0), src_pad.repeat_interleave(K, 0))
    scores = torch.full((B, K), float("-inf"), device=src.device)
    scores[:, 0] = 0.0  # one live hypothesis per row at the start, not K copies of it
    token = torch.full((B * K,), specials.bos, dtype=torch.long, device=src.device)
    tokens = token.new_empty(B * K, 0)
    done = torch.zeros_like(token, dtype=torch.bool)
    length = torch.zeros_like(token)
    for _ in range(max_len):
        logits, state = net.step(token, state)
        log_probs = _log_probs(logits, specials)
        ended = torch.full_like(log_probs[0], float("-inf"))
        ended[specials.pad] = 0.0
        log_probs = torch.where(done[:, None], ended, log_probs)
        V = log_probs.size(-1)
        scores, flat = (scores.view(-1, 1) + log_probs).view(B, K * V).topk(K, dim=1)
        rows = (torch.arange(B, device=src.device)[:, None] * K + flat // V).view(-1)
        token = (flat % V).view(-1)
        state = {name: value[rows] for name, value in state.items()}
        tokens = torch.cat([tokens[rows], token[:, None]], 1)
        length = length[rows] + ~done[rows]
        done = done[rows] | (token == specials.eos)
        if done.all():
            break
    normalized = scores / length.view(B, K).clamp_min(1) ** length_penalty
    best = normalized.argmax(1)
    rows = torch.arange(B, device=src.device) * K + best
    return tokens[rows], normalized.gather(1, best[:, None]).squeeze(1)


def decode(net: nn.Module, src: torch.Tensor, src_pad: torch.Tensor, specials: Specials, max_len: int,
           beam_size: int = 1, length_penalty: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy for ``beam_size=1``, else beam search."""
    if beam_size == 1:
        return greedy(net, src, src_pad, specials, max_len, length_penalty)
    return beam_search(net, src, src_pad, specials, max_len, beam_size, length_penalty)
