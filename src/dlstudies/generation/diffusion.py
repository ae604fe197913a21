"""Diffusion models' noise schedules and samplers, one code path for points and images.

The forward process (Ho et al. 2020; Prince, chapter 18) adds Gaussian noise over T steps,
q(z_t | z_{t-1}) = N(sqrt(1 - beta_t) z_{t-1}, beta_t I), so that in closed form
q(z_t | x) = N(sqrt(abar_t) x, (1 - abar_t) I) with abar_t = prod_{s <= t} (1 - beta_s).
A network sees z_t and t and predicts the noise (``eps``), the clean data (``x0``) or
v = sqrt(abar_t) eps - sqrt(1 - abar_t) x (Salimans & Ho 2022); each determines the other two.

The samplers run the reverse process from z_T ~ N(0, I) over any ``steps`` <= T timesteps,
evenly spaced from T down to 1: ancestral DDPM (Ho et al.'s algorithm 2, Prince's algorithm
18.2; on fewer steps, the respaced process of Nichol & Dhariwal 2021) and DDIM (Song et al.
2021, eq. 12), whose ``eta`` runs from deterministic (0) to the posterior's variance (1).
Classifier-free guidance (Ho & Salimans 2022) mixes conditional and unconditional predictions.
"""

import math
from collections.abc import Callable

import torch
from torch import nn

from dlstudies.config.errors import ConfigError

SCHEDULES = ("linear", "cosine", "constant")
SAMPLERS = ("ddpm", "ddim")
PREDICTIONS = ("eps", "x0", "v")
NoiseModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (z_t, t) -> predicted noise


def betas(kind: str, steps: int, beta: float = 0.01511) -> torch.Tensor:
    """beta_1..beta_T (float64) of the ``kind`` schedule over ``steps`` = T steps.

    ``linear``: Ho et al.'s 1e-4 to 0.02 at T = 1000, both scaled by 1000 / T (Nichol & Dhariwal's
    rule) so that every T ends near pure noise; ``cosine``: Nichol & Dhariwal's, abar_t =
    cos^2(pi / 2 (t / T + s) / (1 + s)) with s = 0.008, betas capped at 0.999; ``constant``:
    ``beta`` at every step (Prince's notebooks: 0.01511 over 100 steps leaves abar_T = 0.218).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"model.timesteps={steps!r} is not allowed; T must be an integer >= 1")
    if kind == "linear":
        scale = 1000 / steps
        return torch.linspace(scale * 1e-4, scale * 0.02, steps, dtype=torch.float64).clamp(max=0.999)
    if kind == "cosine":
        s = 0.008
        f = torch.cos((torch.arange(steps + 1, dtype=torch.float64) / steps + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)
    if kind == "constant":
        if not 0 < beta < 1:
            raise ConfigError(f"model.beta={beta!r} is not allowed; it must be in (0, 1)")
        return torch.full((steps,), float(beta), dtype=torch.float64)
    raise ConfigError(f"model.schedule={kind!r} is not an option; allowed: {', '.join(SCHEDULES)}")


class NoiseSchedule(nn.Module):
    """abar_t for t = 0..T (abar_0 = 1) as a buffer that follows the module's device, and the
    forward process and parameterizations that it determines."""

    def __init__(self, kind: str = "linear", steps: int = 1000, beta: float = 0.01511) -> None:
        super().__init__()
        self.kind, self.steps = kind, steps
        alpha_bar = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas(kind, steps, beta), 0)])
        self.register_buffer("alpha_bar", alpha_bar.float(), persistent=False)  # rebuilt from the config

    def _at(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """abar_t per example, shaped to broadcast over ``like`` (B, ...)."""
        return self.alpha_bar[t].view(-1, *[1] * (like.dim() - 1))

    def noised(self, x: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """z_t = sqrt(abar_t) x + sqrt(1 - abar_t) eps: a draw from q(z_t | x) for integer t (B,)."""
        a = self._at(t, x)
        return a.sqrt() * x + (1 - a).sqrt() * eps

    def target(self, prediction: str, x: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """What a network of the ``prediction`` kind should output for z_t made from x and eps."""
        if prediction == "eps":
            return eps
        if prediction == "x0":
            return x
        a = self._at(t, x)
        return a.sqrt() * eps - (1 - a).sqrt() * x

    def to_eps(self, prediction: str, output: torch.Tensor, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The noise implied by a network's ``output`` of the ``prediction`` kind at z_t."""
        if prediction == "eps":
            return output
        a = self._at(t, z)
        if prediction == "x0":
            return (z - a.sqrt() * output) / (1 - a).sqrt()
        return (1 - a).sqrt() * z + a.sqrt() * output

    def x0_from_eps(self, z: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The clean data implied by noise ``eps`` at z_t: (z_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
        a = self._at(t, z)
        return (z - (1 - a).sqrt() * eps) / a.sqrt()


def sampling_timesteps(total: int, steps: int | None) -> list[int]:
    """``steps`` timesteps evenly spaced from T = ``total`` down to 1 (all T when None)."""
    steps = total if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= total:
        raise ConfigError(f"steps={steps!r} is not allowed; a sampler takes between 1 and T={total} steps")
    if steps == 1:
        return [total]
    spaced = torch.linspace(total, 1, steps, dtype=torch.float64)
    return (spaced + 0.5).floor().long().tolist()  # rounding half up keeps them distinct


def check_sampler(sampler: str, eta: float) -> None:
    """One line for a sampler that is not ``ddpm`` or ``ddim``, or a negative ``eta``."""
    if sampler not in SAMPLERS:
        raise ConfigError(f"sampler={sampler!r} is not an option; allowed: {', '.join(SAMPLERS)}")
    if not eta >= 0:
        raise ConfigError(f"eta={eta!r} is not allowed; it must be >= 0 (0: deterministic DDIM, 1: DDPM-like)")


def guided(noise_model: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
           labels: torch.Tensor, null: int, weight: float) -> NoiseModel:
    """Classifier-free guidance: eps = (1 + w) eps(z, t, label) - w eps(z, t, no label), both in
    one batch (Ho & Salimans 2022, eq. 6). ``null`` is the label that means "no label"; w = 0
    is the conditional model alone."""
    if weight == 0:
        return lambda z, t: noise_model(z, t, labels)
    both = torch.cat([labels, torch.full_like(labels, null)])

    def mixed(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        conditional, unconditional = noise_model(torch.cat([z, z]), torch.cat([t, t]), both).chunk(2)
        return (1 + weight) * conditional - weight * unconditional

    return mixed


@torch.no_grad()
def reverse_process(noise_model: NoiseModel, schedule: NoiseSchedule, z: torch.Tensor, sampler: str = "ddpm",
           steps: int | None = None, eta: float = 0.0, clip: tuple[float, float] | None = None,
           generator: torch.Generator | None = None, trajectory: bool = False
           ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Run the reverse process from z = z_T over ``steps`` timesteps with the ``ddpm`` or
    ``ddim`` (with ``eta``) update; returns x, and with ``trajectory`` also every z visited,
    (steps + 1, *z.shape) from z_T to x.

    With ``clip`` = (low, high) each step's estimate of x is clipped to the data's range and the
    noise re-derived from it (Ho et al.'s image samplers do this); points are left unclipped.
    """
    check_sampler(sampler, eta)
    ts = sampling_timesteps(schedule.steps, steps)
    visited = [z]
    for t, s in zip(ts, ts[1:] + [0]):
        t_batch = torch.full((len(z),), t, device=z.device, dtype=torch.long)
        eps = noise_model(z, t_batch)
        x0 = schedule.x0_from_eps(z, t_batch, eps)
        if clip is not None:
            x0 = x0.clamp(*clip)
            eps = (z - schedule.alpha_bar[t].sqrt() * x0) / (1 - schedule.alpha_bar[t]).sqrt()
        a_t, a_s = schedule.alpha_bar[t], schedule.alpha_bar[s]
        if sampler == "ddpm":  # the posterior mean of z_s given z_t and x; variance beta' (sigma^2 = beta)
            beta = 1 - a_t / a_s
            z = (a_s.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - a_s) * z) / (1 - a_t)
            sigma = beta.sqrt()
        else:
            sigma = eta * ((1 - a_s) / (1 - a_t) * (1 - a_t / a_s)).sqrt()
            z = a_s.sqrt() * x0 + (1 - a_s - sigma**2).clamp(min=0).sqrt() * eps
        if s > 0:
            z = z + sigma * torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
        visited.append(z)
    return (z, torch.stack(visited)) if trajectory else z
