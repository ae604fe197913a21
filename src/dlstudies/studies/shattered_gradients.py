"""Shattered gradients (Balduzzi et al. 2017; Prince fig 11.3): at initialisation, the gradient
of the output along the input (a scalar grid, or lines through MNIST-1D inputs) for the shallowest
and deepest nets (fig 11.3a,b), its autocorrelation against lag (fig 11.3c) and at lag 1 against
depth, with the lag at which it falls below 1/e. The diagnostics callback measures it
(``shattered: true``) into each job's diagnostics.json.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter

from dlstudies.callbacks.diagnostics import read_diagnostics
from dlstudies.studies.figures import residual_variant, value_ticks

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
    ax.set(xlabel="position along the input (0: start, 1: end)", ylabel="d y / d x (over its largest |value|)",
           title=f"gradient at init, {depth} hidden layer{'s' if depth > 1 else ''}")
    ax.legend(fontsize="small")


def decay_lag(autocorr: np.ndarray) -> float:
    """The first lag at which the autocorrelation falls below 1/e; inf when it stays above it."""
    below = np.flatnonzero(np.asarray(autocorr) < 1 / np.e)
    return float(below[0]) if len(below) else float("inf")


def _lag_text(lag: float, max_lag: int) -> str:
    return f"> {max_lag}" if np.isinf(lag) else f"{lag:g}"


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """Traces of the shallowest and deepest nets, the seeds' mean autocorrelation against lag at
    both depths, and against depth its value at lag 1 and the lag where it falls below 1/e."""
    table = table.assign(variant=table.apply(residual_variant, axis=1))
    fig.set_size_inches(21, 4.2)
    axes = fig.subplots(1, 5)
    shallow, deep = table["depth"].min(), table["depth"].max()
    _traces(axes[0], table, shallow)
    _traces(axes[1], table, deep)
    lines = []
    for (variant, part), color in zip(table.groupby("variant"), ("C0", "C1", "C2", "C3")):
        mean = {depth: np.mean(np.stack(runs["shattered_autocorr"].map(np.asarray)), 0)
                for depth, runs in part.groupby("depth")}  # over the seeds
        max_lag = len(mean[deep]) - 1
        for depth, style in ((shallow, "--"), (deep, "-")):
            axes[2].plot(mean[depth], style, color=color, label=f"{variant}, {depth} layers")
        depths = sorted(mean)
        axes[3].plot(depths, [mean[d][1] for d in depths], "o-", color=color, label=variant)
        lags = [decay_lag(mean[d]) for d in depths]
        axes[4].plot(depths, [lag if np.isfinite(lag) else np.nan for lag in lags], "o-", color=color, label=variant)
        seeds = int(part.groupby("depth")["seed"].nunique().min())
        lines.append(f"{variant} ({seeds} seed{'s' if seeds > 1 else ''}): lag-1 autocorrelation {mean[shallow][1]:.3f} at depth "
                     f"{shallow:g} -> {mean[deep][1]:.3f} at depth {deep:g}; below 1/e from lag "
                     f"{_lag_text(lags[0], max_lag)} -> {_lag_text(lags[-1], max_lag)}")
    axes[2].axhline(0, color="grey", lw=0.5)
    axes[2].axhline(1 / np.e, color="grey", lw=0.5, ls=":")
    axes[2].set(xlabel="lag (grid points)", ylabel="autocorrelation (mean subtracted)",
                title="autocorrelation of d y / d x, mean of seeds")
    axes[2].legend(fontsize="x-small")
    axes[3].set(ylabel="autocorrelation at lag 1", title="lag-1 autocorrelation vs depth")
    axes[4].set(yscale="log", ylabel="lag (grid points)", title="first lag below 1/e (none: above it to the end)")
    axes[4].yaxis.set_major_formatter(FormatStrFormatter("%g"))
    for ax in axes[3:]:
        ax.set(xscale="log", xlabel="hidden layers")
        value_ticks(ax, table["depth"])
        ax.legend(fontsize="small")
    return lines
