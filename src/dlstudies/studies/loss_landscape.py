"""The loss landscape (Li et al. 2018, fig. 5; Prince fig 11.13): the training loss around the
trained weights of a plain and a residual net as filled contours on one colour scale, the slice
through each minimum along the first direction, and numbers for how far the loss climbs near the
minimum and how much of the surface is locally convex. The ``LossLandscape`` callback measures
each job's surface."""

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from matplotlib.ticker import FormatStrFormatter, LogLocator

from dlstudies.callbacks.after_training import LossLandscape, read_measurement
from dlstudies.studies.figures import residual_variant

COLUMNS = {"depth": "model.net.depth", "residual": "model.net.residual", "net": "model.net._target_"}
RADIUS = 0.5  # the loss range is taken within this distance of the minimum (1: filters doubled or zeroed)
AXIS = "direction {} (1 = each filter's own norm)"
CEILING = 10.0  # nats: the colours stop here, as Li et al.'s contours do; higher loss is one colour


def job_values(job: Path) -> dict:
    """The job's grid coordinates and loss surface, once it has measured them."""
    surface = read_measurement(job, LossLandscape.filename)
    return {"landscape_coords": surface["coords"], "landscape_loss": surface["loss"]} if surface else {}


def roughness(coords: np.ndarray, loss: np.ndarray, radius: float = RADIUS) -> dict[str, float]:
    """The loss at the centre, its lowest and highest value within ``radius`` of it, and the
    fraction of interior grid points where the surface is locally convex (the 2-D Hessian of finite
    differences is positive definite; Li et al. map the same through |min/max eigenvalue|)."""
    a, b = np.meshgrid(coords, coords, indexing="ij")
    centre, h = loss[len(coords) // 2, len(coords) // 2], coords[1] - coords[0]
    inner = loss[1:-1, 1:-1]
    d_aa = (loss[2:, 1:-1] - 2 * inner + loss[:-2, 1:-1]) / h**2
    d_bb = (loss[1:-1, 2:] - 2 * inner + loss[1:-1, :-2]) / h**2
    d_ab = (loss[2:, 2:] - loss[2:, :-2] - loss[:-2, 2:] + loss[:-2, :-2]) / (4 * h**2)
    convex = (d_aa > 0) & (d_aa * d_bb > d_ab**2)
    near = loss[np.hypot(a, b) <= radius + 1e-9]
    return {"centre": float(centre), "low": float(near.min()), "high": float(near.max()),
            "convex": float(convex.mean())}


def layers(row: pd.Series) -> str:
    """The net's depth as its paper counts it: a convnet's layers are its convolutions and the
    head (He et al.), an MLP's its hidden layers."""
    if str(row.get("net")).endswith("CNN"):
        return f"{row['depth'] + 1} layers"
    return f"{row['depth']} hidden layers"


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """Each architecture's surface (its first seed) as filled contours on one shared log colour
    scale up to ``CEILING``, then the slices through the minima; the trend gives ``roughness``,
    mean over seeds."""
    table = table.dropna(subset=["landscape_loss"]).assign(variant=table.apply(residual_variant, axis=1))
    variants = sorted(table["variant"].unique(), key=lambda v: v.startswith("residual"))
    fig.set_size_inches(5 * len(variants) + 5.5, 4.6)
    axes = np.atleast_1d(fig.subplots(1, len(variants) + 1))
    surfaces = [np.asarray(loss) for loss in table["landscape_loss"]]
    low = max(min(s.min() for s in surfaces), 1e-3)
    norm = LogNorm(low, max(min(max(s.max() for s in surfaces), CEILING), 10 * low))
    levels = np.geomspace(norm.vmin, norm.vmax, 25)
    lines, image = [], None
    for i, (ax, variant) in enumerate(zip(axes, variants)):
        part = table[table["variant"] == variant].sort_values("seed")
        first = part.iloc[0]
        coords, loss = np.asarray(first["landscape_coords"]), np.asarray(first["landscape_loss"])
        image = ax.contourf(coords, coords, loss.T, levels=levels, norm=norm, cmap="viridis", extend="both")
        ax.contour(coords, coords, loss.T, levels=levels[::3], colors="white", linewidths=0.4)
        ax.plot(0, 0, "r+", ms=10)
        ax.add_patch(Circle((0, 0), RADIUS, fill=False, ls="--", lw=0.8, color="red"))  # the trend's disc
        ax.set(xlabel=AXIS.format(1), ylabel=AXIS.format(2), aspect="equal", title=f"{variant}, {layers(first)}")
        axes[-1].plot(coords, loss[:, len(coords) // 2], "o-", ms=3, color=f"C{i}", label=f"{variant}, {layers(first)}")
        stats = pd.DataFrame([roughness(np.asarray(c), np.asarray(s))
                              for c, s in zip(part["landscape_coords"], part["landscape_loss"])]).mean()
        lines.append(f"{variant}, {layers(first)}: training loss {stats['centre']:.3f} at the minimum; within "
                     f"radius {RADIUS:g} from {stats['low']:.3g} to {stats['high']:.3g}; locally convex at "
                     f"{100 * stats['convex']:.0f}% of the grid")
    bar = fig.colorbar(image, ax=list(axes[:-1]), location="bottom", shrink=0.6,
                       label=f"training loss (nats per example, log scale; above {norm.vmax:g}: one colour)")
    slice_ax = axes[-1]
    slice_ax.axvspan(-RADIUS, RADIUS, color="grey", alpha=0.15, lw=0)
    slice_ax.set(yscale="log", xlabel=AXIS.format(1), ylabel="training loss (nats per example, log scale)",
                 title="slice through the minimum (direction 2 = 0)")
    slice_ax.legend(fontsize="small")
    for axis in (bar.ax.xaxis, slice_ax.yaxis):  # ticks at 1, 2, 5 x 10^k, written plainly
        axis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        axis.set_major_formatter(FormatStrFormatter("%g"))
        axis.set_minor_formatter(FormatStrFormatter(""))
    return lines

