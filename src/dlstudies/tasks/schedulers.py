"""Learning-rate schedules for the ``scheduler`` group; each gets the run's total step count."""

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, MultiStepLR


def cosine_with_warmup(optimizer: Optimizer, total_steps: int, warmup_steps: int = 100,
                       min_lr_ratio: float = 0.1) -> LambdaLR:
    """Linear warm-up to the base rate, then cosine decay to ``min_lr_ratio`` of it (nanoGPT's)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def step_decay(optimizer: Optimizer, total_steps: int, milestones: tuple[float, ...] = (0.5, 0.75),
               gamma: float = 0.1) -> MultiStepLR:
    """Multiply the rate by ``gamma`` at the given fractions of training (e.g. half and 3/4)."""
    return MultiStepLR(optimizer, [int(f * total_steps) for f in milestones], gamma=gamma)


def constant(optimizer: Optimizer, total_steps: int) -> LambdaLR:
    """No schedule: the optimizer's rate throughout (``scheduler=none``)."""
    return LambdaLR(optimizer, lambda step: 1.0)
