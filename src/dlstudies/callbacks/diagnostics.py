"""Per-layer signal statistics during training, and the shattered-gradients measurement at init.

Every ``every_n_steps`` optimizer steps (and at step 0, i.e. at initialisation) the callback
records, for each linear layer of the net in forward order, the standard deviation of its output
(the pre-activations of the next nonlinearity) on the training batch, and the standard deviation
of its weight gradient. The values go to the loggers (``diag/act_std/<layer>``,
``diag/grad_std/<layer>``: W&B, CSV) and, with the layer names, to ``diagnostics.json`` in the
run folder, which the sweep report reads. With ``shattered: true`` it also measures, before the
first step, how shattered the net's input gradients are (Balduzzi et al. 2017): inputs
x(t) = a + t (b - a), t in [0, 1], walk from one example a to another b; the derivative
g(t) = d s(x(t)) / dt of a fixed random projection s of the outputs is smooth ("brown noise") for
shallow nets and becomes white noise in deep plain nets, its autocorrelation at lag 1 falling
towards 0, while residual nets keep it correlated. Batch norm normalises with the statistics of
the line's points, held fixed while differentiating, so g(t) is the derivative of the function
the net computes at each point. With ``span: range`` every line instead runs
from the batch's smallest to its largest input: for a scalar input (``data=scalar_grid``) that is
d y / d x along the whole grid, Prince's fig 11.3. The ``shattered_gradients`` study draws it.
"""

import copy
import json
from pathlib import Path

import lightning as L
import torch
from torch import nn

from dlstudies.files import write_text

DIAGNOSTICS = "diagnostics.json"


def linear_layers(net: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The net's linear layers with their names, in the order they were defined."""
    return [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Linear)]


def normalised_by(net: nn.Module, x: torch.Tensor) -> nn.Module:
    """A copy of ``net`` in evaluation mode whose batch norms hold the statistics of the batch
    ``x``: it computes what ``net`` in training mode computes on ``x``, but each point's output
    depends on that point alone.

    Differentiated in training mode, the statistics would couple the points, and a batch-normed
    layer's outputs sum over the batch to a constant: when a linear head follows it, the gradient
    of the summed output is rounding noise, not each point's derivative.
    """
    probe = copy.deepcopy(net).train()
    norms = [m for m in probe.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    counts = {}  # values per feature each norm averages over (its variance's n)
    hooks = [m.register_forward_pre_hook(lambda m, inputs: counts.__setitem__(m, inputs[0].numel() // m.num_features))
             for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = 1.0  # the running statistics become this batch's
    with torch.no_grad():
        probe(x)
    for m in norms:
        m.running_var.mul_((counts[m] - 1) / counts[m])  # stored unbiased; training mode divides by n
    for hook in hooks:
        hook.remove()
    return probe.eval()


def line_gradients(net: nn.Module, a: torch.Tensor, b: torch.Tensor, points: int = 256,
                   projection: torch.Tensor | None = None) -> torch.Tensor:
    """g(t) = d/dt (projection . net(a + t (b - a))) at ``points`` evenly spaced t, shape (points,).

    Batch norms normalise with the statistics of the line's points, held fixed (``normalised_by``).
    """
    t = torch.linspace(0, 1, points, device=a.device).view(-1, *([1] * a.dim()))
    x = (a + t * (b - a)).detach()
    net = normalised_by(net, x)
    x.requires_grad_(True)
    out = net(x)
    projection = torch.ones(out.shape[-1], device=out.device) if projection is None else projection
    (grad,) = torch.autograd.grad((out @ projection).sum(), x)
    return (grad * (b - a)).flatten(1).sum(1)


def autocorrelation(g: torch.Tensor, max_lag: int) -> torch.Tensor:
    """Normalised autocorrelation of the sequence ``g`` at lags 0..max_lag (1 at lag 0).

    A constant sequence (a linear net's gradient) is perfectly correlated: 1 at every lag, not
    the autocorrelation of its rounding errors.
    """
    centred = g - g.mean()
    if centred.abs().max() <= 1e-5 * g.abs().max():
        return torch.ones(max_lag + 1, dtype=g.dtype, device=g.device)
    g = centred
    variance = g.pow(2).sum()
    return torch.stack([(g[: len(g) - k] * g[k:]).sum() / variance for k in range(max_lag + 1)])


SPANS = ("examples", "range")


def shattered_gradients(net: nn.Module, x: torch.Tensor, lines: int = 8, points: int = 256,
                        max_lag: int = 32, seed: int = 0, span: str = "examples") -> dict:
    """Mean autocorrelation of g(t) over ``lines`` lines, each with its own random projection of
    the outputs: lines joining consecutive examples of ``x`` (``span="examples"``), or each time
    the line from x's elementwise minimum to its maximum (``span="range"``).

    Measures copies of ``net`` (batch norm uses each line's statistics, as in training mode), so
    the network itself, its running statistics and the random stream are untouched.
    Returns ``autocorr`` (lags 0..max_lag), ``lag1`` and the first line's ``gradient`` trace.
    """
    if span not in SPANS:
        raise ValueError(f"span={span!r} is not allowed; use examples or range")
    if span == "examples" and len(x) < lines + 1:
        raise ValueError(f"shattered gradients need {lines + 1} examples, got {len(x)}")
    low, high = x.min(0).values, x.max(0).values
    probe = copy.deepcopy(net).train()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        out_dim = probe(x[:2]).shape[-1]
    traces = []
    for i in range(lines):
        projection = torch.randn(out_dim, generator=generator).to(x.device)
        with torch.enable_grad():
            a, b = (low, high) if span == "range" else (x[i], x[i + 1])
            traces.append(line_gradients(probe, a, b, points, projection).detach())
    mean = torch.stack([autocorrelation(g, max_lag) for g in traces]).mean(0)
    return {"autocorr": mean.tolist(), "lag1": float(mean[1]), "gradient": traces[0].tolist()}


class Diagnostics(L.Callback):
    """Records per-layer activation and gradient stds; optionally the shattered gradients."""

    def __init__(self, output_dir: str, every_n_steps: int = 100, shattered: bool = False,
                 lines: int = 8, points: int = 256, max_lag: int = 32, span: str = "examples") -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps={every_n_steps} is not allowed; it must be >= 1")
        if span not in SPANS:
            raise ValueError(f"span={span!r} is not allowed; use examples or range")
        self.output_dir, self.every_n_steps = Path(output_dir), every_n_steps
        self.shattered, self.lines, self.points, self.max_lag = shattered, lines, points, max_lag
        self.span = span
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
                pl_module.net, batch[0], self.lines, self.points, self.max_lag, span=self.span)
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
        write_text(self.output_dir / DIAGNOSTICS, json.dumps(self.record))


def read_diagnostics(run_dir: str | Path) -> dict | None:
    """A run's ``diagnostics.json``, or None when the run recorded none."""
    path = Path(run_dir) / DIAGNOSTICS
    return json.loads(path.read_text()) if path.is_file() else None
