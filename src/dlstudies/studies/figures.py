"""What the studies' figures share: statistics over seeds, error bars, ticks at the swept values."""

from collections.abc import Sequence

import pandas as pd
from matplotlib.axes import Axes


def over_seeds(table: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Mean, std and count of ``value`` over the seeds of each ``by`` group (NaNs skipped)."""
    grouped = table.groupby(by, dropna=False)[value]
    return grouped.agg(["mean", "std", "count"]).reset_index().sort_values(by)


def errorbar(ax: Axes, stats: pd.DataFrame, x: str, label: str, scale: float = 1.0, **kwargs) -> None:
    """``over_seeds`` statistics as a line of means with +-1 std bars (none for a single seed)."""
    ax.errorbar(stats[x], stats["mean"] * scale, yerr=stats["std"].fillna(0) * scale, capsize=3,
                marker="o", label=label, **kwargs)


def value_ticks(ax: Axes, values: pd.Series) -> None:
    """Ticks at exactly the swept values of a log axis, labelled plainly."""
    ticks = sorted(values.dropna().unique())
    ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
    ax.minorticks_off()


def swept_axes(axes: Sequence[Axes], titles: tuple[str, ...], ylabels: tuple[str, ...], values: pd.Series,
               xlabel: str) -> None:
    """Each axis titled and its y axis labelled, with a log x axis ticked at the swept ``values``,
    and a legend."""
    for ax, title, ylabel in zip(axes, titles, ylabels):
        ax.set(xscale="log", xlabel=xlabel, ylabel=ylabel, title=title)
        value_ticks(ax, values)
        ax.legend()


def mean(table: pd.DataFrame, value: str) -> float:
    """The mean of a column as a plain float, for trend text."""
    return float(table[value].mean())


def rank_correlation(x: pd.Series, y: pd.Series) -> float:
    """Spearman's rho of two columns over the rows where both are known."""
    ok = x.notna() & y.notna()
    return float(x[ok].rank().corr(y[ok].rank()))


def residual_variant(row: pd.Series) -> str:
    """A job's architecture in words: plain or residual, plus its norm ("residual + batchnorm")."""
    name = "residual" if row["residual"] else "plain"
    return name + (f" + {row['norm']}" if row["norm"] != "none" else "")
