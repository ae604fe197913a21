"""Degradation with convolutions (He et al. 2016, figure 1): training and validation error over
the steps of each plain and residual depth, beside the final training and test errors against depth.
Layers are counted as He et al. count them: the convolutions (``model.net.depth``) plus the head."""

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dlstudies.studies.figures import errorbar, mean, over_seeds, residual_variant, value_ticks

COLUMNS = {"depth": "model.net.depth", "residual": "model.net.residual"}
CURVES = {"train_err": "trainset/acc", "val_err": "val/acc"}


def job_values(job: Path) -> dict:
    """The job's error curves (steps, training-set error, validation error) from csv/metrics.csv."""
    path = job / "csv" / "metrics.csv"
    if not path.is_file():
        return {}
    metrics = pd.read_csv(path)
    if not set(CURVES.values()) <= set(metrics):
        return {}
    rows = metrics.dropna(subset=list(CURVES.values()))
    return {"curve_step": rows["step"].tolist()} | {
        f"curve_{name}": (1 - rows[column]).tolist() for name, column in CURVES.items()}


def _mean_curve(part: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Steps and the seeds' mean of a curve column, cut to the shortest seed's length."""
    curves = [c for c in part[column] if isinstance(c, list) and c]
    steps = [s for s in part["curve_step"] if isinstance(s, list) and s]
    if not curves:
        return np.array([]), np.array([])
    n = min(len(c) for c in curves)
    return np.asarray(steps[0][:n]), np.mean([c[:n] for c in curves], axis=0)


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """Error curves per architecture and depth (solid: the deepest), and final errors vs layers."""
    table = table.assign(variant=table.apply(residual_variant, axis=1), layers=table["depth"] + 1)
    fig.set_size_inches(15, 4.2)
    axes = fig.subplots(1, 3)
    deepest = table["layers"].max()
    has_curves = "curve_step" in table
    for i, (variant, part) in enumerate(table.groupby("variant")):
        for layers, runs in part.groupby("layers"):
            style = {"color": f"C{i}", "ls": "-" if layers == deepest else "--", "label": f"{variant}, {layers} layers"}
            for ax, column in zip(axes[:2], ("curve_train_err", "curve_val_err")):
                steps, curve = _mean_curve(runs, column) if has_curves else (np.array([]), np.array([]))
                ax.plot(steps, 100 * curve, **style)
        errorbar(axes[2], over_seeds(part, ["layers"], "trainset/err"), "layers", f"{variant}: training",
                 scale=100, color=f"C{i}")
        errorbar(axes[2], over_seeds(part, ["layers"], "test/err"), "layers", f"{variant}: test",
                 scale=100, color=f"C{i}", ls=":")
    for ax, title in zip(axes[:2], ("training error, whole training set", "validation error")):
        ax.set(xlabel="training step", ylabel="error (%)", title=title)
        ax.legend(fontsize="small")
    axes[2].set(xscale="log", xlabel="layers (convolutions + head)", ylabel="error (%)", title="final error")
    value_ticks(axes[2], table["layers"])
    axes[2].legend(fontsize="small")
    lines = []
    for variant, part in table.groupby("variant"):
        by_depth = [(layers, runs) for layers, runs in part.groupby("layers")]
        lines.append(f"{variant}: " + "; ".join(
            f"{layers} layers: training error {100 * mean(runs, 'trainset/err'):.1f}%, test error "
            f"{100 * mean(runs, 'test/err'):.1f}%" for layers, runs in by_depth))
    return lines
