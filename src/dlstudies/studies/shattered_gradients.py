"""Shattered gradients (Balduzzi et al. 2017): the lag-1 autocorrelation of d output / d input
along lines of inputs at initialisation, against depth, and the gradient traces of the deepest
nets. The diagnostics callback measures it (``shattered: true``) into each job's diagnostics.json.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dlstudies.callbacks.diagnostics import read_diagnostics
from dlstudies.studies.figures import errorbar, over_seeds, residual_variant, value_ticks

COLUMNS = {"depth": "model.net.depth", "residual": "model.net.residual"}


def job_values(job: Path) -> dict:
    """The job's lag-1 autocorrelation and first gradient trace, once it has measured them."""
    shattered = (read_diagnostics(job) or {}).get("shattered")
    return {"shattered_lag1": shattered["lag1"], "shattered_gradient": shattered["gradient"]} if shattered else {}


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """Autocorrelation vs depth per architecture, and the deepest nets' traces scaled to 1."""
    table = table.assign(variant=table.apply(residual_variant, axis=1))
    axes = fig.subplots(1, 2)
    lines = []
    deepest = table["depth"].max()
    for variant, part in table.groupby("variant"):
        stats = over_seeds(part, ["depth"], "shattered_lag1")
        errorbar(axes[0], stats, "depth", variant)
        lines.append(f"{variant}: lag-1 autocorrelation {stats.iloc[0]['mean']:.3f} at depth "
                     f"{stats.iloc[0]['depth']:g} -> {stats.iloc[-1]['mean']:.3f} at depth {stats.iloc[-1]['depth']:g}")
        trace = part.loc[part["depth"] == deepest, "shattered_gradient"].iloc[0]
        trace = np.asarray(trace, dtype=float)
        axes[1].plot(np.linspace(0, 1, len(trace)), trace / (np.abs(trace).max() or 1), lw=0.8,
                     label=variant)
    axes[0].set(xscale="log", xlabel="hidden layers", ylabel="autocorrelation at lag 1",
                title="gradient autocorrelation at init")
    value_ticks(axes[0], table["depth"])
    axes[0].legend()
    axes[1].set(xlabel="position t along the input line", ylabel="d output / dt (scaled)",
                title=f"gradients along a line, {deepest} layers")
    axes[1].legend(fontsize="small")
    return lines
