"""How few steps a sampler needs (Song et al. 2021, DDIM): one trained diffusion model per data set,
sampled by DDIM with 5 to T steps at eta 0 (deterministic) and eta 1 (DDPM-like): the sample
distance (beside its noise floor) and the time per sample against the number of steps, and the
samples themselves (scatters for points, grids for images) at a few step counts."""

from functools import cache
from pathlib import Path

import pandas as pd
import torch
from matplotlib.figure import Figure
from omegaconf import OmegaConf

from dlstudies.checkpoint import load_module
from dlstudies.generation.figures import image_grid
from dlstudies.prerequisites import trained_first
from dlstudies.studies.figures import value_ticks

COLUMNS = {"data": "data.shape", "experiment": "model.pretrained", "steps": "model.sample_steps",
           "eta": "model.eta", "timesteps": "model.timesteps"}
SHOWN = 64  # samples per picture


def job_values(job: Path) -> dict:
    """The checkpoint the job sampled from: its recipe's run, trained first (``model.pretrained``)."""
    recipe = trained_first(OmegaConf.load(job / ".hydra" / "config.yaml")).get("pretrained")
    return {"checkpoint": str(recipe.checkpoint) if recipe else None}


@cache
def pictured(checkpoint: str, steps: int, eta: float) -> torch.Tensor:
    """Samples of the model drawn as a job drew them: 2000 points, or ``SHOWN`` images of every class in turn."""
    module, _ = load_module(checkpoint)
    n = SHOWN if module.pixels is not None else 2000
    labels = torch.arange(n) % module.num_classes if module.num_classes else None
    return module.sample(n, seed=0, labels=labels, sampler="ddim", steps=steps, eta=eta)


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """Distance and time per sample against steps (one line per data set and eta), then the
    samples at the fewest, a middle and all steps; the trend gives, per data set and eta, the
    fewest steps within 3x the noise floor."""
    table = table.assign(data=table["data"].fillna(table["experiment"]),
                         steps=table["steps"].fillna(table["timesteps"]).astype(int))
    counts = sorted(table["steps"].unique())
    shown_steps = sorted({counts[0], counts[len(counts) // 2], counts[-1]})
    datasets = sorted(table["data"].unique())
    fig.set_size_inches(14, 4 + 3 * len(datasets))
    grid = fig.add_gridspec(1 + len(datasets), 6)
    ax_distance, ax_time = fig.add_subplot(grid[0, :3]), fig.add_subplot(grid[0, 3:])
    lines = []
    for data in datasets:
        for eta in sorted(table["eta"].unique()):
            rows = table[(table["data"] == data) & (table["eta"] == eta)].sort_values("steps")
            label = f"{data}, eta {eta:g}"
            ax_distance.plot(rows["steps"], rows["test/sample_distance"], marker="o", label=label)
            ax_time.plot(rows["steps"], 1000 * rows["test/sample_seconds"], marker="o", label=label)
            within = rows[rows["test/sample_distance"] <= 3 * rows["test/sample_distance_floor"]]
            fewest = f"{int(within['steps'].min())} steps" if len(within) else "no step count"
            lines.append(f"{data}, eta {eta:g}: distance " + ", ".join(
                f"{d:.4f} at {s}" for s, d in zip(rows["steps"], rows["test/sample_distance"]))
                + f" (noise floor {rows['test/sample_distance_floor'].mean():.4f}); within 3x the floor from {fewest}")
        floor = table[table["data"] == data]["test/sample_distance_floor"].mean()
        ax_distance.axhline(floor, linestyle=":", color="grey")
        ax_distance.text(table["steps"].min(), floor, f" noise floor ({data})", va="bottom", fontsize=8)
    ax_distance.set(xscale="log", yscale="log", xlabel="sampler steps", ylabel="sample distance (data units)",
                    title="distance to the data against DDIM steps")
    ax_time.set(xscale="log", yscale="log", xlabel="sampler steps", ylabel="time per sample (ms, one CPU core per job)",
                title="sampling time against DDIM steps")
    for ax in (ax_distance, ax_time):
        value_ticks(ax, table["steps"])
        ax.legend(fontsize=8)
    for i, data in enumerate(datasets):
        for j, (steps, eta) in enumerate((s, e) for e in sorted(table["eta"].unique())[:2] for s in shown_steps):
            row = table[(table["data"] == data) & (table["steps"] == steps) & (table["eta"] == eta)]
            if not len(row):
                continue
            ax = fig.add_subplot(grid[1 + i, j])
            samples = pictured(row["checkpoint"].iloc[0], int(steps), float(eta))
            if samples.dim() == 4:
                ax.imshow(image_grid(samples).squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=1)
                ax.set_axis_off()
            else:
                ax.scatter(samples[:, 0].numpy(), samples[:, 1].numpy(), s=1, alpha=0.5)
                ax.set(xlim=(-3, 3), ylim=(-3, 3), aspect="equal", xlabel="x1", ylabel="x2")
            ax.set_title(f"{data}: {steps} steps, eta {eta:g}", fontsize=9)
    return lines
