"""Batch norm's dependence between samples: test error against batch size for batch norm, layer
norm and none, and the gap between the norms' training-mode (batch statistics) and evaluation-mode
(running statistics) answers, measured by the ``BatchStatistics`` callback."""

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from dlstudies.callbacks.after_training import BatchStatistics, read_measurement
from dlstudies.studies.figures import errorbar, over_seeds, swept_axes

COLUMNS = {"batch_size": "data.batch_size"}


def job_values(job: Path) -> dict:
    """Test error with the norms in evaluation and in training mode, once measured."""
    return read_measurement(job, BatchStatistics.filename) or {}


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """Test error, training loss and the train-mode minus eval-mode test error against batch size."""
    table = table.assign(mode_gap=table["train_mode_err"] - table["eval_mode_err"])
    axes = fig.subplots(1, 3)
    fig.set_size_inches(15, 4.2)
    lines = []
    for norm, part in table.groupby("norm"):
        errorbar(axes[0], over_seeds(part, ["batch_size"], "test/err"), "batch_size", norm, scale=100)
        errorbar(axes[1], over_seeds(part, ["batch_size"], "trainset/loss"), "batch_size", norm)
        gap = over_seeds(part, ["batch_size"], "mode_gap")
        errorbar(axes[2], gap, "batch_size", norm, scale=100)
        test = over_seeds(part, ["batch_size"], "test/err")
        small, large = test.iloc[0], test.iloc[-1]
        lines.append(f"{norm}: test error {100 * small['mean']:.1f}% at batch {small['batch_size']:g} vs "
                     f"{100 * large['mean']:.1f}% at {large['batch_size']:g}; training-mode minus evaluation-mode "
                     f"test error {100 * gap.iloc[0]['mean']:+.1f} points at batch {gap.iloc[0]['batch_size']:g}, "
                     f"{100 * gap.iloc[-1]['mean']:+.1f} at {gap.iloc[-1]['batch_size']:g}")
    titles = ("test error, evaluation mode", "training loss (whole training set)",
              "test error: training mode - evaluation mode")
    ylabels = ("test error (%)", "training loss (nats per example, log scale)", "difference (percentage points)")
    swept_axes(axes, titles, ylabels, table["batch_size"], "batch size (examples; same number of steps)")
    axes[1].set_yscale("log")
    axes[2].axhline(0, color="grey", lw=0.5)
    return lines
