"""Measurements of the trained net, taken once training (or testing) ends and written as JSON into
the run folder, where the studies' reports read them (``read_measurement``).

- ``LossLandscape`` (Li et al. 2018; Prince fig 11.13): the training loss at theta + a d1 + b d2
  on a square grid of (a, b) in [-radius, radius]^2, for two random directions d1, d2 normalised
  filter by filter: each row of a weight matrix (one unit's incoming weights) is rescaled to the
  norm of the same row of theta, so that surfaces compare between nets whatever their weights'
  scale. As in Li et al., 1-D parameters (biases, norm scales) stay put. Taken on the final
  weights, when training ends.
- ``BatchStatistics`` (the slides' "downsides of batch norm"): test error with the norms in
  evaluation mode (running statistics) and in training mode (each batch's own statistics, in
  batches of the training batch size): batch norm's two answers differ, layer norm's cannot.
  Taken when testing ends, on the weights that ``test/*`` reports (the best checkpoint).
"""

import copy
import json
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from dlstudies.files import write_text


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


@torch.no_grad()
def error(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, train_mode: bool) -> float:
    """Classification error of a copy of ``net`` in batches of ``batch_size``, its norms in
    training mode (batch statistics; running statistics left untouched) or evaluation mode.
    A last batch of one example joins the batch before it: one example has no batch statistics."""
    probe = copy.deepcopy(net).train(train_mode)
    starts = list(range(0, len(y), batch_size))
    if len(starts) > 1 and len(y) - starts[-1] == 1:
        starts.pop()
    ends = starts[1:] + [len(y)]
    wrong = sum(int((probe(x[a:b]).argmax(-1) != y[a:b]).sum()) for a, b in zip(starts, ends))
    return wrong / len(y)


class Measurement(L.Callback):
    """Writes ``measure(trainer, net)`` to ``<output_dir>/<filename>``; subclasses choose when."""

    filename: str

    def __init__(self, output_dir: str) -> None:
        self.output_dir = Path(output_dir)

    def measure(self, trainer: L.Trainer, net: nn.Module) -> dict:
        raise NotImplementedError

    def write(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        write_text(self.output_dir / self.filename, json.dumps(self.measure(trainer, pl_module.net)))


class LossLandscape(Measurement):
    """The loss surface on the first ``examples`` training examples (``loss_landscape.json``)."""

    filename = "loss_landscape.json"

    def __init__(self, output_dir: str, radius: float = 1.0, points: int = 21, examples: int = 2000) -> None:
        if radius <= 0 or points < 3 or examples < 1:
            raise ValueError(f"radius={radius}, points={points}, examples={examples} are not allowed; "
                             "they need radius > 0, points >= 3, examples >= 1")
        super().__init__(output_dir)
        self.radius, self.points, self.examples = radius, points, examples

    def measure(self, trainer: L.Trainer, net: nn.Module) -> dict:
        x, y = (t[: self.examples].to(net_device(net)) for t in trainer.datamodule.splits["train"])
        return loss_surface(net, x, y, self.radius, self.points)

    on_train_end = Measurement.write


class BatchStatistics(Measurement):
    """Test error in evaluation and training mode, batches as in training (``batch_statistics.json``)."""

    filename = "batch_statistics.json"

    def measure(self, trainer: L.Trainer, net: nn.Module) -> dict:
        x, y = (t.to(net_device(net)) for t in trainer.datamodule.splits["test"])
        batch_size = trainer.datamodule.batch_size
        return {"eval_mode_err": error(net, x, y, batch_size, train_mode=False),
                "train_mode_err": error(net, x, y, batch_size, train_mode=True)}

    on_test_end = Measurement.write


def net_device(net: nn.Module) -> torch.device:
    """Where the net's parameters live."""
    return next(net.parameters()).device


def read_measurement(run_dir: str | Path, filename: str) -> dict | None:
    """A run's measurement file, or None when the run took none."""
    path = Path(run_dir) / filename
    return json.loads(path.read_text()) if path.is_file() else None
