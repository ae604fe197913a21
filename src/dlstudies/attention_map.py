"""Cross-attention maps as Bahdanau et al. (2015, fig. 3) draw them: source tokens across, output
tokens down, each cell the weight an output token gave a source token."""

from pathlib import Path

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure state

from dlstudies.files import atomic_path


def draw_attention(ax: Axes, weights: torch.Tensor, source: list[str], output: list[str]) -> None:
    """``weights`` (len(output), len(source)) as a grey-scale map with the tokens as tick labels."""
    ax.imshow(weights.detach().float().cpu().numpy(), cmap="gray", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source)), source, rotation=90)
    ax.set_yticks(range(len(output)), output)
    ax.set(xlabel="source", ylabel="output")


def save_attention(path: str | Path, weights: torch.Tensor, source: list[str], output: list[str]) -> Path:
    """Draw one map and write it as a PNG (atomically); returns the path."""
    size = (max(4.0, 0.3 * len(source) + 1.5), max(3.0, 0.3 * len(output) + 1.5))
    fig = Figure(figsize=size, layout="constrained")
    draw_attention(fig.subplots(), weights, source, output)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return Path(path)
