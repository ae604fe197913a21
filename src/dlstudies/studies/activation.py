"""Activation functions: test and training error per activation, sorted by test error. Swish jobs
(``+sweep=activation_swish``) are told apart by their beta, fixed or learnt."""

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dlstudies.studies.figures import over_seeds

# Beyond the table's own ``activation`` column (the job's choice): swish's parameter, if any.
COLUMNS = {"beta": "activation.beta", "learnable": "activation.learnable"}


def label(row: pd.Series) -> str:
    """The activation in words: its name, and swish's beta ("swish beta=0.4 learnt")."""
    if pd.isna(row["beta"]):
        return row["activation"]
    return f"{row['activation']} beta={row['beta']:g}" + (" learnt" if row["learnable"] else "")


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """Bars of test and training error per activation; the trend lists test errors, best first."""
    table = table.assign(name=table.apply(label, axis=1))
    ax = fig.subplots()
    test = over_seeds(table, ["name"], "test/err").sort_values("mean")
    train = over_seeds(table, ["name"], "trainset/err").set_index("name").loc[test["name"]]
    x = np.arange(len(test))
    ax.bar(x - 0.2, 100 * test["mean"], 0.4, yerr=100 * test["std"].fillna(0), capsize=3, label="test")
    ax.bar(x + 0.2, 100 * train["mean"], 0.4, yerr=100 * train["std"].fillna(0), capsize=3,
           label="training")
    ax.set_xticks(x, test["name"], rotation=30)
    ax.set(xlabel="activation function", ylabel="error (%)", title="error per activation function")
    ax.legend()
    return ["test error: " + ", ".join(f"{a} {100 * m:.1f}%" for a, m in zip(test["name"], test["mean"]))]
