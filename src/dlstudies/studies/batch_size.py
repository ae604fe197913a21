"""The textbook's figure 9.5: (a) test error vs learning rate at a fixed step budget x rate,
(b) test error vs batch size at a fixed rate, training error beside it."""

import pandas as pd
from matplotlib.figure import Figure

from dlstudies.studies.figures import errorbar, over_seeds, rank_correlation, value_ticks

COLUMNS = {"part": "study.point.part", "lr": "optimizer.lr", "batch_size": "data.batch_size",
           "steps": "trainer.max_steps"}


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """One panel per part; the trend gives both ends and Spearman's rho of test error."""
    axes = fig.subplots(1, 2)
    lines = []
    for ax, (part, x) in zip(axes, (("learning_rate", "lr"), ("batch_size", "batch_size"))):
        rows = table[table["part"] == part]
        if rows.empty:
            continue
        errorbar(ax, over_seeds(rows, [x], "test/err"), x, "test", scale=100)
        errorbar(ax, over_seeds(rows, [x], "trainset/err"), x, "training", scale=100, linestyle="--")
        fixed = "batch %d" % rows["batch_size"].iloc[0] if x == "lr" else "lr %g" % rows["lr"].iloc[0]
        ax.set(xscale="log", xlabel="learning rate" if x == "lr" else "batch size (examples)",
               ylabel="error (%)", title=f"({'a' if x == 'lr' else 'b'}) {fixed}")
        value_ticks(ax, rows[x])
        ax.legend()
        stats = over_seeds(rows, [x], "test/err")
        first, last = stats.iloc[0], stats.iloc[-1]
        lines.append(f"{x}: test error {100 * first['mean']:.1f}% at {first[x]:g} -> "
                     f"{100 * last['mean']:.1f}% at {last[x]:g}; Spearman rho(test error, {x}) = "
                     f"{rank_correlation(rows[x], rows['test/err']):+.2f}; training error <= "
                     f"{100 * rows['trainset/err'].max():.1f}%")
    return lines
