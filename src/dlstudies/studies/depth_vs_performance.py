"""Depth vs performance (He et al. 2016): training loss and test error against depth, one line per
architecture (plain/residual, with or without batch norm)."""

import pandas as pd
from matplotlib.figure import Figure

from dlstudies.studies.figures import errorbar, mean, over_seeds, residual_variant, swept_axes

COLUMNS = {"depth": "model.net.depth", "residual": "model.net.residual"}


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """Loss and error vs depth; the trend compares 8-16 layers with 32 and more."""
    table = table.assign(variant=table.apply(residual_variant, axis=1))
    axes = fig.subplots(1, 2)
    for variant, part in table.groupby("variant"):
        errorbar(axes[0], over_seeds(part, ["depth"], "trainset/loss"), "depth", variant)
        errorbar(axes[1], over_seeds(part, ["depth"], "test/err"), "depth", variant, scale=100)
    titles = ("training loss, whole training set (optimisation: degradation)",
              "test error (what it costs, with generalisation)")
    ylabels = ("training loss (nats per example, log scale)", "test error (%)")
    swept_axes(axes, titles, ylabels, table["depth"], "hidden layers")
    axes[0].set_yscale("log")
    lines = []
    for variant, part in table.groupby("variant"):
        mid, deep = part[part["depth"].between(8, 16)], part[part["depth"] >= 32]
        if len(mid) and len(deep):
            lines.append(f"{variant}: training loss {mean(mid, 'trainset/loss'):.3f} at 8-16 layers vs "
                         f"{mean(deep, 'trainset/loss'):.3f} at 32+; test error "
                         f"{100 * mean(mid, 'test/err'):.1f}% vs {100 * mean(deep, 'test/err'):.1f}%")
    return lines
