"""Fixed sinusoidal embeddings (Vaswani et al. 2017) of positions, diffusion timesteps or any
real values: the same code for the Transformer's positions and a diffusion net's inputs."""

import math

import torch


def sinusoids(values: torch.Tensor, width: int) -> torch.Tensor:
    """(*values.shape, width) embeddings: sin and cos of value / 10000^(2i / width), interleaved."""
    values = values.float().unsqueeze(-1)
    frequency = torch.exp(torch.arange(0, width, 2, device=values.device) * (-math.log(10000.0) / width))
    encoding = values.new_zeros(*values.shape[:-1], width)
    encoding[..., 0::2] = torch.sin(values * frequency)
    encoding[..., 1::2] = torch.cos(values * frequency[: width // 2])
    return encoding
