"""Autoregressive sampling with temperature and top-k for any causal language model."""

import torch
from torch import nn


def _next_token(logits: torch.Tensor, temperature: float, top_k: int | None,
                generator: torch.Generator | None) -> torch.Tensor:
    logits = torch.nan_to_num(logits)  # a barely-trained or exploded net must still sample
    if temperature <= 0:
        return logits.argmax(-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)


@torch.no_grad()
def generate(net: nn.Module, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, stop_token: int | None = None,
             generator: torch.Generator | None = None, use_cache: bool = True) -> torch.Tensor:
    """Extend ``idx`` (B, T) by up to ``max_new_tokens``; stops early once every row has emitted
    ``stop_token``. Recurrent nets (with ``step``) carry their state. Nets with a key-value cache
    (``new_cache``; ``use_cache``) read each token once while the sequence fits their context, the
    same tokens as re-reading it; others, and every net past its context, re-read at most
    ``net.block_size`` tokens each step.
    """
    recurrent = hasattr(net, "step")
    cache = net.new_cache() if use_cache and hasattr(net, "new_cache") else None
    state, done = None, torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
    feed = idx
    for _ in range(max_new_tokens):
        if recurrent:
            logits, state = net.step(feed, state)
        elif cache is not None and idx.size(1) <= net.block_size:
            logits = net(idx[:, len(cache) :], cache)  # the tokens the cache has not seen
        else:  # past the context positions shift, so cached keys no longer fit: re-read the window
            window = idx if net.block_size is None else idx[:, -net.block_size :]
            logits = net(window)
        token = _next_token(logits[:, -1], temperature, top_k, generator)
        idx = torch.cat([idx, token], dim=1)
        feed = token if recurrent else idx
        if stop_token is not None:
            done |= token.squeeze(1) == stop_token
            if done.all():
                break
    return idx
