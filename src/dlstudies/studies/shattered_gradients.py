"""Shattered gradients (Balduzzi et al. 2017; Prince fig 11.3): at initialisation, the gradient
of the output along the input (a scalar grid, or lines through MNIST-1D inputs) for the shallowest
and deepest nets (fig 11.3a,b), its autocorrelation against lag (fig 11.3c) and at lag 1 against
depth. The diagnostics callback measures it (``shattered: true``) into each job's diagnostics.json.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dlstudies.callbacks.diagnostics import read_diagnostics
from dlstudies.studies.figures import errorbar, over_seeds, residual_variant, value_ticks

COLUMNS = {"depth": "model.net.depth", "residual": "model.net.residual"}


def job_values(job: Path) -> dict:
    """The job's autocorrelation (lags 0..), its lag-1 value and first gradient trace, once measured."""
    shattered = (read_diagnostics(job) or {}).get("shattered")
    if not shattered:
        return {}
    return {"shattered_lag1": shattered["lag1"], "shattered_autocorr": shattered["autocorr"],
            "shattered_gradient": shattered["gradient"]}


def _traces(ax: Axes, table: pd.DataFrame, depth: int) -> None:
    """One gradient trace per architecture at ``depth`` (its first seed), scaled to a maximum of 1."""
    for variant, part in table[table["depth"] == depth].groupby("variant"):
        trace = np.asarray(part.sort_values("seed")["shattered_gradient"].iloc[0], dtype=float)
        ax.plot(np.linspace(0, 1, len(trace)), trace / (np.abs(trace).max() or 1), lw=0.8, label=variant)
    ax.set(xlabel="position along the input (0: start, 1: end)", ylabel="d y / d x (scaled)",
           title=f"gradient at init, {depth} hidden layer{'s' if depth > 1 else ''}")
    ax.legend(fontsize="small")


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """Traces of the shallowest and deepest nets, autocorrelation against lag at both depths, and
    lag-1 autocorrelation against depth, per architecture."""
    table = table.assign(variant=table.apply(residual_variant, axis=1))
    fig.set_size_inches(17, 4.2)
    axes = fig.subplots(1, 4)
    shallow, deep = table["depth"].min(), table["depth"].max()
    _traces(axes[0], table, shallow)
    _traces(axes[1], table, deep)
    lines = []
    for (variant, part), color in zip(table.groupby("variant"), ("C0", "C1", "C2", "C3")):
        for depth, style in ((shallow, "--"), (deep, "-")):
            autocorr = np.mean(np.stack(part.loc[part["depth"] == depth, "shattered_autocorr"].map(np.asarray)), 0)
            axes[2].plot(autocorr, style, color=color, label=f"{variant}, {depth} layers")
        stats = over_seeds(part, ["depth"], "shattered_lag1")
        errorbar(axes[3], stats, "depth", variant, color=color)
        lines.append(f"{variant}: lag-1 autocorrelation {stats.iloc[0]['mean']:.3f} at depth "
                     f"{stats.iloc[0]['depth']:g} -> {stats.iloc[-1]['mean']:.3f} at depth {stats.iloc[-1]['depth']:g}")
    axes[2].axhline(0, color="grey", lw=0.5)
    axes[2].set(xlabel="lag (grid points)", ylabel="autocorrelation", title="autocorrelation of d y / d x")
    axes[2].legend(fontsize="x-small")
    axes[3].set(xscale="log", xlabel="hidden layers", ylabel="autocorrelation at lag 1",
                title="lag-1 autocorrelation vs depth")
    value_ticks(axes[3], table["depth"])
    axes[3].legend(fontsize="small")
    return lines
