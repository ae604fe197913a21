"""Per-layer signal statistics during training, and the shattered-gradients measurement at init.

Every ``every_n_steps`` optimizer steps (and at step 0, i.e. at initialisation) the callback
records, for each linear layer of the net in forward order, the standard deviation of its output
(the pre-activations of the next nonlinearity) on the training batch, and the standard deviation
of its weight gradient. The values go to the loggers (``diag/act_std/<layer>``,
``diag/grad_std/<layer>``: W&B, CSV) and, with the layer names, to ``diagnostics.json`` in the
run folder, which the sweep report reads. With ``shattered: true`` it also measures the
gradient autocorrelation along lines of inputs before the first step (see
``dlstudies.studies.shattered``).
"""

import json
from pathlib import Path

import lightning as L
import torch
from torch import nn

from dlstudies.studies.shattered import shattered_gradients

DIAGNOSTICS = "diagnostics.json"


def linear_layers(net: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The net's linear layers with their names, in the order they were defined."""
    return [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Linear)]


class Diagnostics(L.Callback):
    """Records per-layer activation and gradient stds; optionally the shattered gradients."""

    def __init__(self, output_dir: str, every_n_steps: int = 100, shattered: bool = False,
                 lines: int = 8, points: int = 256, max_lag: int = 32) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps={every_n_steps} is not allowed; it must be >= 1")
        self.output_dir, self.every_n_steps = Path(output_dir), every_n_steps
        self.shattered, self.lines, self.points, self.max_lag = shattered, lines, points, max_lag
        self.record: dict = {"layers": [], "history": []}
        self._hooks: list = []
        self._act_std: list[float] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.record["layers"] = [name for name, _ in linear_layers(pl_module.net)]

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch,
                             batch_idx: int) -> None:
        step = trainer.global_step
        if step == 0 and self.shattered and "shattered" not in self.record:
            self.record["shattered"] = shattered_gradients(
                pl_module.net, batch[0], self.lines, self.points, self.max_lag)
            self._log(trainer, {"diag/shattered_lag1": self.record["shattered"]["lag1"]}, step)
        if step % self.every_n_steps == 0:
            self._act_std = []
            for _, layer in linear_layers(pl_module.net):
                self._hooks.append(layer.register_forward_hook(self._store_std))

    def _store_std(self, module: nn.Module, inputs, output: torch.Tensor) -> None:
        self._act_std.append(float(output.detach().float().std()))

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        if not self._hooks:
            return
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        grad_std = [float(layer.weight.grad.std()) if layer.weight.grad is not None else float("nan")
                    for _, layer in linear_layers(pl_module.net)]
        step = trainer.global_step
        self.record["history"].append({"step": step, "act_std": self._act_std, "grad_std": grad_std})
        metrics = {f"diag/act_std/{i:02d}": v for i, v in enumerate(self._act_std)}
        metrics |= {f"diag/grad_std/{i:02d}": v for i, v in enumerate(grad_std)}
        self._log(trainer, metrics, step)
        self._write()

    def _log(self, trainer: L.Trainer, metrics: dict[str, float], step: int) -> None:
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)

    def _write(self) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.output_dir / f"{DIAGNOSTICS}.tmp"
        tmp.write_text(json.dumps(self.record))
        tmp.replace(self.output_dir / DIAGNOSTICS)


def read_diagnostics(run_dir: str | Path) -> dict | None:
    """A run's ``diagnostics.json``, or None when the run recorded none."""
    path = Path(run_dir) / DIAGNOSTICS
    return json.loads(path.read_text()) if path.is_file() else None
