"""The loss landscape (Li et al. 2018; Prince fig 11.13): contour plots of the training loss
around the trained weights of a plain and a residual net, side by side, and numbers for how
steep and how convex each surface is. The ``LossLandscape`` callback measures each job's surface."""

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from dlstudies.callbacks.after_training import LossLandscape, read_measurement
from dlstudies.studies.figures import residual_variant

COLUMNS = {"depth": "model.net.depth", "residual": "model.net.residual"}


def job_values(job: Path) -> dict:
    """The job's grid coordinates and loss surface, once it has measured them."""
    surface = read_measurement(job, LossLandscape.filename)
    return {"landscape_coords": surface["coords"], "landscape_loss": surface["loss"]} if surface else {}


def roughness(coords: np.ndarray, loss: np.ndarray) -> dict[str, float]:
    """The loss at the centre, its largest rise within the grid's radius, and the fraction of
    interior grid points where the surface is locally convex (the 2-D Hessian of finite
    differences is positive definite; Li et al. map the same through |min/max eigenvalue|)."""
    a, b = np.meshgrid(coords, coords, indexing="ij")
    centre, h = loss[len(coords) // 2, len(coords) // 2], coords[1] - coords[0]
    inner = loss[1:-1, 1:-1]
    d_aa = (loss[2:, 1:-1] - 2 * inner + loss[:-2, 1:-1]) / h**2
    d_bb = (loss[1:-1, 2:] - 2 * inner + loss[1:-1, :-2]) / h**2
    d_ab = (loss[2:, 2:] - loss[2:, :-2] - loss[:-2, 2:] + loss[:-2, :-2]) / (4 * h**2)
    convex = (d_aa > 0) & (d_aa * d_bb > d_ab**2)
    return {"centre": float(centre), "rise": float(loss[np.hypot(a, b) <= coords.max()].max() - centre),
            "convex": float(convex.mean())}


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """Each architecture's surface (its first seed) as filled contours on one shared log colour
    scale; the trend gives the numbers of ``roughness``, mean over seeds."""
    table = table.dropna(subset=["landscape_loss"]).assign(variant=table.apply(residual_variant, axis=1))
    variants = sorted(table["variant"].unique(), key=lambda v: v.startswith("residual"))
    fig.set_size_inches(5.2 * len(variants) + 1, 4.6)
    axes = np.atleast_1d(fig.subplots(1, len(variants)))
    surfaces = [np.asarray(loss) for loss in table["landscape_loss"]]
    norm = LogNorm(max(min(s.min() for s in surfaces), 1e-3), max(s.max() for s in surfaces))
    levels = np.geomspace(norm.vmin, norm.vmax, 25)
    lines, image = [], None
    for ax, variant in zip(axes, variants):
        part = table[table["variant"] == variant].sort_values("seed")
        coords, loss = np.asarray(part["landscape_coords"].iloc[0]), np.asarray(part["landscape_loss"].iloc[0])
        image = ax.contourf(coords, coords, loss.T, levels=levels, norm=norm, cmap="viridis", extend="both")
        ax.contour(coords, coords, loss.T, levels=levels[::3], colors="white", linewidths=0.4)
        ax.plot(0, 0, "r+", ms=10)
        ax.set(xlabel="direction 1 (filter-normalised)", ylabel="direction 2", aspect="equal",
               title=f"{variant}, {part['depth'].iloc[0]} hidden layers")
        stats = pd.DataFrame([roughness(np.asarray(c), np.asarray(s))
                              for c, s in zip(part["landscape_coords"], part["landscape_loss"])]).mean()
        lines.append(f"{variant}: training loss {stats['centre']:.3f} at the minimum, up to "
                     f"{stats['centre'] + stats['rise']:.3g} within radius {coords.max():g}; locally convex "
                     f"at {100 * stats['convex']:.0f}% of the grid")
    fig.colorbar(image, ax=list(axes), label="training loss (log scale)")
    return lines
