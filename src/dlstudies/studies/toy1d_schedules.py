"""The textbook's 1-D diffusion model (Prince, figs 18.2-18.4 and 18.7; notebooks 18.1-18.4) under
three noise schedules: the notebooks' constant beta, which leaves abar_T = 0.218 of the signal
at T, beside the linear and cosine schedules, which end near pure noise.

Per schedule, one row of the figure: the forward process (the closed-form marginals q(z_t) as a
heat map, five forward trajectories over them), five reverse trajectories of the trained model
over the same map, and the histogram of its samples over the true density. The constant
schedule's samplers start from N(0, 1) where q(z_T) is not N(0, 1); its samples are also drawn
from the true q(z_T), which separates that start error from the model's own.
"""

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from dlstudies.checkpoint import load_module
from dlstudies.data.toy import TEXTBOOK_1D
from dlstudies.generation.diffusion import NoiseSchedule, reverse_process
from dlstudies.metrics.points import sliced_wasserstein

COLUMNS = {"schedule": "model.schedule", "timesteps": "model.timesteps", "beta": "model.beta",
           "eval_samples": "model.eval_samples"}
ORDER = ("constant", "linear", "cosine")
GRID = np.linspace(-3, 3, 241)
SAMPLES = 20000


def marginals(schedule: NoiseSchedule) -> np.ndarray:
    """q(z_t) on ``GRID`` for t = 0..T, (T + 1, len(GRID)): the mixture with every component's
    mean scaled by sqrt(abar_t) and its variance abar_t sigma^2 + 1 - abar_t."""
    a = schedule.alpha_bar.double()[:, None, None]
    means, stds, weights = TEXTBOOK_1D.means[:, 0], TEXTBOOK_1D.stds, TEXTBOOK_1D.weights
    var = a * stds**2 + 1 - a
    z = torch.from_numpy(GRID)[None, :, None]
    density = weights * torch.exp(-((z - a.sqrt() * means) ** 2) / (2 * var)) / torch.sqrt(2 * np.pi * var)
    return density.sum(-1).numpy()


def forward_paths(schedule: NoiseSchedule, n: int = 5, seed: int = 0) -> np.ndarray:
    """``n`` forward chains z_0 = x, z_t = sqrt(1 - beta_t) z_{t-1} + sqrt(beta_t) eps, (T + 1, n)."""
    generator = torch.Generator().manual_seed(seed)
    z = TEXTBOOK_1D.sample(n, seed)[0][:, 0].double()
    alpha = schedule.alpha_bar.double()[1:] / schedule.alpha_bar.double()[:-1]
    paths = [z]
    for a in alpha:
        z = a.sqrt() * z + (1 - a).sqrt() * torch.randn(n, generator=generator, dtype=z.dtype)
        paths.append(z)
    return torch.stack(paths).numpy()


@cache
def sampled(job: Path) -> dict:
    """The job's reverse trajectories (5 of them) and samples from N(0, 1), and for a schedule
    that does not end in pure noise, samples from the true q(z_T) as well."""
    module, _ = load_module(job / "checkpoints" / "best.ckpt")
    schedule, model = module.schedule, module.noise_model()
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(SAMPLES, 1, generator=generator)
    x, paths = reverse_process(model, schedule, z, module.defaults["sampler"], generator=generator, trajectory=True)
    out = {"samples": x[:, 0].numpy(), "reverse": paths[:, :5, 0].numpy()}
    abar = schedule.alpha_bar[-1]
    if abar > 1e-3:  # the start the model was trained for: z_T = sqrt(abar_T) x + sqrt(1 - abar_T) eps
        start = abar.sqrt() * TEXTBOOK_1D.sample(SAMPLES, 7)[0] + (1 - abar).sqrt() * torch.randn(SAMPLES, 1, generator=generator)
        out["samples_true_start"] = reverse_process(model, schedule, start, module.defaults["sampler"],
                                                    generator=generator)[:, 0].numpy()
    return out


def w1(samples: np.ndarray) -> float:
    """1-D Wasserstein distance of samples to as many fresh true points."""
    truth = TEXTBOOK_1D.sample(len(samples), 11)[0]
    return sliced_wasserstein(torch.from_numpy(samples)[:, None].float(), truth)


def job_values(job: Path) -> dict:
    """Where the job's checkpoint lies, for the figure's trajectories and samples."""
    return {"job_dir": str(job)}


def draw_row(axes, row: pd.Series, fig: Figure) -> str:
    """One schedule's three panels; returns its trend line."""
    ax_forward, ax_reverse, ax_hist = axes
    schedule = NoiseSchedule(row["schedule"], int(row["timesteps"]), float(row["beta"]))
    steps, abar = schedule.steps, float(schedule.alpha_bar[-1])
    heat, draws = marginals(schedule), sampled(Path(row["job_dir"]))
    name = f"{row['schedule']} schedule, T={steps}, abar_T={abar:.3g}"
    panels = ((ax_forward, forward_paths(schedule), "forward process: q(z_t), 5 chains"),
              (ax_reverse, draws["reverse"][::-1], "the model's reverse process: 5 chains"))
    for ax, paths, title in panels:
        image = ax.imshow(heat, aspect="auto", origin="lower", extent=(GRID[0], GRID[-1], 0, steps),
                          cmap="magma", vmin=0, vmax=min(1.0, float(heat.max())))
        ax.plot(paths, np.arange(steps + 1), linewidth=1)
        ax.set(xlim=(GRID[0], GRID[-1]), xlabel="z_t", ylabel="t (steps)", title=title)
    ax_forward.set_ylabel(f"{name}\nt (steps)")
    fig.colorbar(image, ax=ax_reverse, label="q(z_t) (density per unit of z)")
    distance, floor = row["test/sample_distance"], row["test/sample_distance_floor"]
    ax_hist.hist(draws["samples"], bins=GRID[::3], density=True, alpha=0.6, label="samples, from N(0, 1)")
    if "samples_true_start" in draws:
        ax_hist.hist(draws["samples_true_start"], bins=GRID[::3], density=True, histtype="step",
                     linewidth=1.5, label="samples, from the true q(z_T)")
    ax_hist.plot(GRID, heat[0], "k-", label="true density")
    ax_hist.set(xlabel="x", ylabel="density (per unit of x)", xlim=(GRID[0], GRID[-1]),
                title=f"samples: W1 {distance:.4f} (noise floor {floor:.4f})")
    ax_hist.legend(fontsize=8)
    line = (f"{row['schedule']}: abar_T = {abar:.3f}; W1 of {int(row['eval_samples'])} samples {distance:.4f}, "
            f"noise floor {floor:.4f} ({distance / floor:.1f}x), N(0, 1) {row['test/sample_distance_normal']:.3f}")
    if "samples_true_start" in draws:
        line += (f"; {SAMPLES} samples started from N(0, 1): W1 {w1(draws['samples']):.4f}, "
                 f"from the true q(z_T): {w1(draws['samples_true_start']):.4f}")
    return line


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """One row per schedule (see the module docstring); the trend gives each schedule's abar_T,
    its test's W1 beside the noise floor, and the start error where there is one."""
    table = table.assign(order=table["schedule"].map(lambda s: ORDER.index(s) if s in ORDER else len(ORDER)))
    rows = [row for _, row in table.sort_values("order").iterrows()]
    fig.set_size_inches(15, 3.6 * len(rows))
    axes = fig.subplots(len(rows), 3, squeeze=False)
    return [draw_row(ax_row, row, fig) for ax_row, row in zip(axes, rows)]
