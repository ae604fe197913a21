"""Shattered gradients (Balduzzi et al. 2017): how fast d output / d input decorrelates along a
line of inputs, for a network at initialisation.

Inputs x(t) = a + t (b - a), t in [0, 1], walk from one example a to another b in ``points``
steps. The derivative g(t) = d s(x(t)) / dt of a fixed random projection s of the outputs is
smooth ("brown noise") for shallow nets; in deep plain nets it becomes white noise, its
autocorrelation at lag 1 falls towards 0, while residual nets keep it correlated.
"""

import copy

import torch
from torch import nn


def line_gradients(net: nn.Module, a: torch.Tensor, b: torch.Tensor, points: int = 256,
                   projection: torch.Tensor | None = None) -> torch.Tensor:
    """g(t) = d/dt (projection . net(a + t (b - a))) at ``points`` evenly spaced t, shape (points,).

    The points go through the net as one batch, so batch-norm layers in training mode normalise
    with the statistics of the line itself.
    """
    t = torch.linspace(0, 1, points, device=a.device).view(-1, *([1] * a.dim()))
    x = (a + t * (b - a)).detach().requires_grad_(True)
    out = net(x)
    projection = torch.ones(out.shape[-1], device=out.device) if projection is None else projection
    (grad,) = torch.autograd.grad((out @ projection).sum(), x)
    return (grad * (b - a)).flatten(1).sum(1)


def autocorrelation(g: torch.Tensor, max_lag: int) -> torch.Tensor:
    """Normalised autocorrelation of the sequence ``g`` at lags 0..max_lag (1 at lag 0)."""
    g = g - g.mean()
    variance = g.pow(2).sum().clamp_min(1e-30)
    return torch.stack([(g[: len(g) - k] * g[k:]).sum() / variance for k in range(max_lag + 1)])


def shattered_gradients(net: nn.Module, x: torch.Tensor, lines: int = 8, points: int = 256,
                        max_lag: int = 32, seed: int = 0) -> dict:
    """Mean autocorrelation of g(t) over ``lines`` lines joining consecutive examples of ``x``.

    Measures a copy of ``net`` in training mode (batch norm uses the line's statistics, as during
    training), so the network itself, its running statistics and the random stream are untouched.
    Returns ``autocorr`` (lags 0..max_lag), ``lag1`` and the first line's ``gradient`` trace.
    """
    if len(x) < lines + 1:
        raise ValueError(f"shattered gradients need {lines + 1} examples, got {len(x)}")
    probe = copy.deepcopy(net).train()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        out_dim = probe(x[:2]).shape[-1]
    traces = []
    for i in range(lines):
        projection = torch.randn(out_dim, generator=generator).to(x.device)
        with torch.enable_grad():
            traces.append(line_gradients(probe, x[i], x[i + 1], points, projection).detach())
    mean = torch.stack([autocorrelation(g, max_lag) for g in traces]).mean(0)
    return {"autocorr": mean.tolist(), "lag1": float(mean[1]), "gradient": traces[0].tolist()}
