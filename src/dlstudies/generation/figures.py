"""Pictures of generated samples: images as one grid, 2-D points as a scatter, 1-D points as a
histogram. What a task's ``sample`` returns decides which (``kind``)."""

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure state

from dlstudies.files import atomic_path

GAP = 0.5  # the grey between grid cells and in empty cells: apart from black and white backgrounds


def kind(samples: list[str] | torch.Tensor) -> str:
    """``texts``, ``images`` ((N, C, H, W) in [0, 1], or (R, K, C, H, W): R rows of K) or
    ``points`` ((N, 1) or (N, 2)); anything else is a one-line ValueError."""
    if isinstance(samples, list):
        return "texts"
    if samples.dim() in (4, 5) and samples.shape[-3] in (1, 3):
        return "images"
    if samples.dim() == 2 and samples.size(1) in (1, 2):
        return "points"
    raise ValueError(f"samples of shape {tuple(samples.shape)} are neither images (N, C, H, W) with 1 or 3 "
                     "channels nor points (N, 1) or (N, 2)")


def image_grid(images: torch.Tensor, gap: int = 2) -> torch.Tensor:
    """One (H', W', C) picture of ``images``: (R, K, C, H, W) as R rows of K; (N, C, H, W) as a
    near-square grid filled row by row. Cells are ``gap`` pixels apart."""
    if images.dim() == 4:
        n = images.size(0)
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        blank = images.new_full((rows * cols - n, *images.shape[1:]), GAP)
        images = torch.cat([images, blank]).view(rows, cols, *images.shape[1:])
    rows, cols, c, h, w = images.shape
    cells = F.pad(images.clamp(0, 1), (gap // 2, gap - gap // 2) * 2, value=GAP)
    return cells.permute(0, 3, 1, 4, 2).reshape(rows * (h + gap), cols * (w + gap), c)


def draw(samples: torch.Tensor, title: str, reference: torch.Tensor | None = None) -> Figure:
    """The figure of image or point samples, titled ``title``; points over ``reference`` points
    (true data, grey), when given."""
    samples = samples.detach().float().cpu()
    if kind(samples) == "images":
        grid = image_grid(samples)
        width = min(12.0, max(4.0, grid.size(1) / 40))  # about 4 screen pixels per image pixel at 150 dpi
        fig = Figure(figsize=(width, width * grid.size(0) / grid.size(1) + 0.5), layout="constrained")
        ax = fig.subplots()
        ax.imshow(grid.squeeze(-1).numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_axis_off()
    else:
        fig = Figure(figsize=(6, 5), layout="constrained")
        ax = fig.subplots()
        if samples.size(1) == 2:
            if reference is not None:
                ax.scatter(reference[:, 0].numpy(), reference[:, 1].numpy(), s=6, color="0.75", linewidths=0, label="data")
            ax.scatter(samples[:, 0].numpy(), samples[:, 1].numpy(), s=6, alpha=0.6, linewidths=0, label="samples")
            ax.set(xlabel="x1 (data units)", ylabel="x2 (data units)")
            ax.set_aspect("equal", adjustable="datalim")  # one unit is as long on both axes
        else:
            bins = min(100, max(10, len(samples) // 20))
            _, edges, _ = ax.hist(samples[:, 0].numpy(), bins=bins, density=True, label="samples")
            if reference is not None:
                ax.hist(reference[:, 0].numpy(), bins=edges, density=True, histtype="step", color="k", label="data")
            ax.set(xlabel="x (data units)", ylabel="density (per data unit)")
        if reference is not None:
            ax.legend()
    fig.suptitle(title, wrap=True)
    return fig


def save_samples(samples: torch.Tensor, path: str | Path, title: str, reference: torch.Tensor | None = None) -> Path:
    """Draw image or point samples (over ``reference`` points) and write the PNG (atomically);
    returns the path."""
    fig = draw(samples, title, reference)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150, format="png")
    return Path(path)


def sample_title(choices: dict, n: int, seed: int | None, fallback: str = "model") -> str:
    """A figure title naming the run by its recipe (experiment, else model and data options; else
    ``fallback``), never its folder: ``experiment=mnist_vae: 64 samples, seed 0``."""
    recipe = (f"experiment={choices['experiment']}" if choices.get("experiment")
              else " ".join(f"{g}={choices[g]}" for g in ("model", "data") if choices.get(g)) or fallback)
    return f"{recipe}: {n} samples" + ("" if seed is None else f", seed {seed}")
