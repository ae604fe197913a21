"""The loss landscape around the trained weights (Li et al. 2018; Prince fig 11.13).

After training, the training loss is evaluated at theta + a d1 + b d2 on a square grid of
(a, b) in [-radius, radius]^2, for two random directions d1, d2 normalised filter by filter:
each row of a weight matrix (one unit's incoming weights) is rescaled to the norm of the same
row of theta, so that the plot is comparable between nets whatever their weights' scale. Like
Li et al., 1-D parameters (biases, norm scales) stay put. The grid goes to ``loss_landscape.json``
in the run folder; the ``loss_landscape`` study draws it.
"""

import copy
import json
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from dlstudies.files import write_text

LANDSCAPE = "loss_landscape.json"


def filter_normalised_direction(net: nn.Module, generator: torch.Generator) -> list[torch.Tensor]:
    """One random direction, a tensor per parameter: Gaussian rows rescaled to the parameter's
    row norms; zero for 1-D parameters."""
    direction = []
    for p in net.parameters():
        if p.dim() < 2:
            direction.append(torch.zeros_like(p))
            continue
        d = torch.randn(p.shape, generator=generator).to(p)
        rows, d_rows = p.detach().flatten(1), d.flatten(1)
        d_rows *= rows.norm(dim=1, keepdim=True) / d_rows.norm(dim=1, keepdim=True).clamp_min(1e-12)
        direction.append(d)
    return direction


@torch.no_grad()
def loss_surface(net: nn.Module, x: torch.Tensor, y: torch.Tensor, radius: float = 1.0,
                 points: int = 21, seed: int = 0) -> dict:
    """Cross-entropy of ``net`` (eval mode, on a copy) on (x, y) over the plane of two
    filter-normalised directions: ``coords`` (points,) and ``loss`` (points x points, [i][j] at
    a = coords[i], b = coords[j])."""
    probe = copy.deepcopy(net).eval()
    generator = torch.Generator().manual_seed(seed)
    d1, d2 = (filter_normalised_direction(probe, generator) for _ in range(2))
    theta = [p.detach().clone() for p in probe.parameters()]
    coords = torch.linspace(-radius, radius, points)
    loss = torch.empty(points, points)
    for i, a in enumerate(coords):
        for j, b in enumerate(coords):
            for p, t, u, v in zip(probe.parameters(), theta, d1, d2):
                p.copy_(t + a * u + b * v)
            loss[i, j] = F.cross_entropy(probe(x), y)
    return {"coords": coords.tolist(), "loss": loss.tolist()}


class LossLandscape(L.Callback):
    """At the end of training, the loss surface on the first ``examples`` training examples."""

    def __init__(self, output_dir: str, radius: float = 1.0, points: int = 21, examples: int = 2000) -> None:
        if radius <= 0 or points < 3 or examples < 1:
            raise ValueError(f"radius={radius}, points={points}, examples={examples} are not allowed; "
                             "they need radius > 0, points >= 3, examples >= 1")
        self.output_dir, self.radius, self.points, self.examples = Path(output_dir), radius, points, examples

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        x, y = (t[: self.examples].to(pl_module.device) for t in trainer.datamodule.splits["train"])
        surface = loss_surface(pl_module.net, x, y, self.radius, self.points)
        write_text(self.output_dir / LANDSCAPE, json.dumps(surface))


def read_landscape(run_dir: str | Path) -> dict | None:
    """A run's ``loss_landscape.json``, or None when it recorded none."""
    path = Path(run_dir) / LANDSCAPE
    return json.loads(path.read_text()) if path.is_file() else None
