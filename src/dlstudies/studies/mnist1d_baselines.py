"""The MNIST-1D paper's baseline table (Greydanus 2020): test accuracy of each model over seeds,
beside the paper's own figure for the same 4000 training examples, as a table and a bar chart."""

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from dlstudies.summary import read_summary

# The paper's table 1 (test accuracy, %, 4000 training examples) by experiment.
PAPER = {"mnist1d_linear": ("logistic regression", 32), "mnist1d_mlp": ("MLP", 68),
         "mnist1d_cnn": ("CNN", 94), "mnist1d_gru": ("GRU", 91)}
COLUMNS: dict[str, str] = {}


def job_values(job: Path) -> dict:
    """The experiment the job ran (its Hydra choice)."""
    return {"experiment": ((read_summary(job) or {}).get("choices") or {}).get("experiment")}


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """Bars of mean test accuracy (+-1 std over seeds) beside the paper's; one table line each."""
    stats = (table.assign(acc=100 * table["test/acc"]).groupby("experiment")["acc"]
             .agg(["mean", "std", "count"]).reindex([e for e in PAPER if e in set(table["experiment"])]))
    names = [PAPER[e][0] for e in stats.index]
    paper = [PAPER[e][1] for e in stats.index]
    ax = fig.subplots()
    fig.set_size_inches(7, 4.2)
    x = range(len(stats))
    ax.bar([i - 0.2 for i in x], paper, 0.4, label="paper (Greydanus 2020)", color="0.7")
    ax.bar([i + 0.2 for i in x], stats["mean"], 0.4, yerr=stats["std"].fillna(0), capsize=3, label="dlstudies")
    ax.set_xticks(list(x), names)
    ax.set(xlabel="model", ylabel="test accuracy (%)", ylim=(0, 100), title="MNIST-1D, 4000 training examples")
    ax.legend(loc="upper left")
    lines = ["| model | paper | ours (mean +- std, seeds) |", "|---|---|---|"]
    for name, ref, (_, row) in zip(names, paper, stats.iterrows()):
        lines.append(f"| {name} | {ref}% | {row['mean']:.1f}% +- {0 if pd.isna(row['std']) else row['std']:.1f} "
                     f"({int(row['count'])}) |")
    return lines
