"""Explicit L2 penalty: test and training error against lambda (0 included, on a symlog axis)."""

import pandas as pd
from matplotlib.figure import Figure

from dlstudies.studies.figures import errorbar, over_seeds

COLUMNS = {"l2": "regularizer.l2"}


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """Error vs lambda; the trend gives lambda=0, the best lambda and the largest."""
    ax = fig.subplots()
    for value, label, style in (("test/err", "test", "-"), ("trainset/err", "training", "--")):
        errorbar(ax, over_seeds(table, ["l2"], value), "l2", label, scale=100, linestyle=style)
    positive = table.loc[table["l2"] > 0, "l2"]
    ax.set_xscale("symlog", linthresh=float(positive.min()) if len(positive) else 1e-6)
    ax.set(xlabel="L2 penalty lambda (loss + lambda sum(w^2))", ylabel="error (%)", title="error vs explicit L2 penalty")
    ax.legend()
    stats = over_seeds(table, ["l2"], "test/err")
    best = stats.loc[stats["mean"].idxmin()]
    return [f"test error {100 * stats.iloc[0]['mean']:.1f}% at lambda={stats.iloc[0]['l2']:g}; best "
            f"{100 * best['mean']:.1f}% at lambda={best['l2']:g}; "
            f"{100 * stats.iloc[-1]['mean']:.1f}% at lambda={stats.iloc[-1]['l2']:g}"]
