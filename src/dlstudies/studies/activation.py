"""Activation functions: test and training error per activation, sorted by test error."""

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dlstudies.studies.figures import over_seeds

COLUMNS: dict[str, str] = {}  # the table's own ``activation`` column (the job's choice) suffices


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """Bars of test and training error per activation; the trend lists test errors, best first."""
    ax = fig.subplots()
    test = over_seeds(table, ["activation"], "test/err").sort_values("mean")
    train = over_seeds(table, ["activation"], "trainset/err").set_index("activation").loc[test["activation"]]
    x = np.arange(len(test))
    ax.bar(x - 0.2, 100 * test["mean"], 0.4, yerr=100 * test["std"].fillna(0), capsize=3, label="test")
    ax.bar(x + 0.2, 100 * train["mean"], 0.4, yerr=100 * train["std"].fillna(0), capsize=3,
           label="training")
    ax.set_xticks(x, test["activation"], rotation=30)
    ax.set(ylabel="error (%)", title="error per activation function")
    ax.legend()
    return ["test error: " + ", ".join(f"{a} {100 * m:.1f}%" for a, m in zip(test["activation"], test["mean"]))]
