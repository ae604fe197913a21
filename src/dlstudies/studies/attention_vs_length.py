"""Exact match and BLEU against source length, one line per architecture (Bahdanau et al. 2015,
fig. 2: without attention quality falls as sources grow; with attention it holds). Each job's
folder keeps the attention maps of three test sentences (``attention_<i>.png``)."""

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from dlstudies.studies.figures import errorbar, over_seeds
from dlstudies.summary import read_summary

COLUMNS = {"net": "model.net._target_", "attention": "model.net.attention"}
METRICS = {"exact_match": "exact match (%)", "bleu": "BLEU (x100)"}


def job_values(job: Path) -> dict:
    """The job's per-bucket test metrics (``test/exact_match/len_1-10``, ...)."""
    summary = read_summary(job) or {"metrics": {}}
    return {k: v for k, v in summary["metrics"].items() if k.startswith(("test/exact_match/", "test/bleu/"))}


def variant(row: pd.Series) -> str:
    """A job's architecture in words."""
    if str(row["net"]).endswith("EncoderDecoderTransformer"):
        return "Transformer"
    return "RNN, no attention" if row["attention"] == "none" else f"RNN + {row['attention']} attention"


def bucket_order(name: str) -> int:
    """``len_11-20`` -> 11: buckets sort by their shortest source."""
    return int(name.removeprefix("len_").split("-")[0].rstrip("+"))


def draw(table: pd.DataFrame, fig: Figure) -> list[str]:
    """Two panels of metric vs source-length bucket (mean and spread over seeds)."""
    table = table.assign(variant=table.apply(variant, axis=1))
    buckets = sorted({c.split("/")[2] for c in table if c.startswith("test/exact_match/")}, key=bucket_order)
    long = table.melt(id_vars=["variant", "seed"], value_vars=[f"test/{m}/{b}" for m in METRICS for b in buckets],
                      var_name="key", value_name="value").dropna(subset=["value"])
    long["metric"], long["bucket"] = long["key"].str.split("/").str[1], long["key"].str.split("/").str[2]
    long["position"] = long["bucket"].map(buckets.index)
    axes = fig.subplots(1, 2)
    fig.set_size_inches(11, 4.5)
    lines = []
    for ax, (metric, label) in zip(axes, METRICS.items()):
        for name, rows in long[long["metric"] == metric].groupby("variant"):
            stats = over_seeds(rows, ["position"], "value")
            errorbar(ax, stats, "position", name, scale=100)
            if metric == "exact_match":
                first, last = stats.iloc[0], stats.iloc[-1]
                lines.append(f"{name}: exact match {100 * first['mean']:.1f}% at {buckets[int(first['position'])]} "
                             f"-> {100 * last['mean']:.1f}% at {buckets[int(last['position'])]} words")
        ax.set_xticks(range(len(buckets)), [b.removeprefix("len_") for b in buckets])
        ax.set(xlabel="source length (words)", ylabel=label, title=f"{label.split(' (')[0]} vs source length")
        ax.legend()
    return lines
