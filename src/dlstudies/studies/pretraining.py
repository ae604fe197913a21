"""What masked-LM pre-training buys: test accuracy against labelled examples, fine-tuned from the
pre-trained encoder and from scratch, beside the n-gram baseline trained on the same subsets."""

from functools import cache
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from dlstudies.data.names_sex import sex_counts, split_of
from dlstudies.studies.figures import errorbar, over_seeds, value_ticks
from dlstudies.summary import read_summary

COLUMNS = {"pretrained": "model.pretrained", "num_train": "data.num_train",
           "val_fraction": "data.val_fraction", "test_fraction": "data.test_fraction"}
VARIANTS = {True: "pre-trained", False: "from scratch"}


@cache
def training_names(val_fraction: float, test_fraction: float) -> int:
    """How many names the whole training split holds (what ``data.num_train=null`` trains on)."""
    return sum(split_of(name, val_fraction, test_fraction) == "train" for name in sex_counts()[0])


def job_values(job: Path) -> dict:
    """The n-gram baseline's test accuracy on the job's split, once the job has tested."""
    return {"ngram_acc": (read_summary(job) or {}).get("metrics", {}).get("test/ngram_acc")}


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """Accuracy vs labelled examples, one line per variant and the baseline; the trend gives the
    gain of pre-training at each size."""
    labelled = [training_names(v, t) if pd.isna(n) else int(n)
                for n, v, t in zip(table["num_train"], table["val_fraction"], table["test_fraction"])]
    table = table.assign(labelled=labelled, variant=table["pretrained"].notna().map(VARIANTS),
                         ngram_acc=pd.to_numeric(table["ngram_acc"]))
    ax = fig.subplots()
    stats = {}
    for variant in VARIANTS.values():
        stats[variant] = over_seeds(table[table["variant"] == variant], ["labelled"], "test/acc")
        errorbar(ax, stats[variant], "labelled", variant, scale=100)
    baseline = over_seeds(table[table["variant"] == VARIANTS[False]], ["labelled"], "ngram_acc")
    errorbar(ax, baseline, "labelled", "character n-gram logistic regression", scale=100, linestyle="--")
    ax.set(xscale="log", xlabel="labelled training names", ylabel="test accuracy (%)",
           title="names -> sex: fine-tuning a BERT-style encoder")
    value_ticks(ax, table["labelled"])
    ax.legend()
    both = stats[VARIANTS[True]].merge(stats[VARIANTS[False]], on="labelled", suffixes=("_pre", "_scratch"))
    both = both.merge(baseline[["labelled", "mean"]].rename(columns={"mean": "ngram"}), on="labelled")
    lines = [f"{row.labelled} labels: pre-trained {100 * row.mean_pre:.1f}% (std {100 * row.std_pre:.1f}), "
             f"from scratch {100 * row.mean_scratch:.1f}% (std {100 * row.std_scratch:.1f}), n-gram "
             f"{100 * row.ngram:.1f}%; pre-training {100 * (row.mean_pre - row.mean_scratch):+.1f} points"
             for row in both.itertuples()]
    gain = 100 * (both["mean_pre"] - both["mean_scratch"])
    lines.append(f"pre-training's gain: {gain.iloc[0]:+.1f} points at {both['labelled'].iloc[0]} labels, "
                 f"{gain.iloc[-1]:+.1f} at {both['labelled'].iloc[-1]}; largest at {both['labelled'][gain.idxmax()]}")
    return lines
