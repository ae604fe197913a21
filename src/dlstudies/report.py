"""Tables and figures of a finished (or partly finished) sweep:
``python -m dlstudies.report <sweep folder>`` (or ``dlstudies-report``).

Reads every job folder's ``summary.json`` (status, metrics), ``.hydra/config.yaml`` (what the job
ran) and ``diagnostics.json`` (per-layer stds, shattered gradients), and writes into the sweep
folder ``<study>.csv`` (one row per job, diverged and failed jobs included), ``<study>.png``
(the study's figure, means over seeds with +-1 std error bars when there are several) and
``<study>.txt`` (the trends in numbers, also printed). The study is the sweep's ``study.name``;
a sweep without one gets the table only. When the jobs logged to W&B, the figure and table are
logged to a W&B run of the sweep's group as well.
"""

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure state
from omegaconf import OmegaConf

from dlstudies.callbacks.diagnostics import read_diagnostics
from dlstudies.config.resolvers import register_resolvers, wandb_offline
from dlstudies.summary import read_summary

METRICS = ["trainset/loss", "trainset/acc", "best/val/loss", "val/acc", "test/loss", "test/acc"]
# Config values the figures need, per study: column name -> config key.
CONFIG_COLUMNS = {
    "depth_vs_performance": {"depth": "model.net.depth", "residual": "model.net.residual"},
    "shattered_gradients": {"depth": "model.net.depth", "residual": "model.net.residual"},
    "batch_size": {"part": "study.point.part", "lr": "optimizer.lr", "batch_size": "data.batch_size",
                   "steps": "trainer.max_steps"},
    "l2": {"l2": "regularizer.l2"},
    "init": {"init_std": "init.std", "depth": "model.net.depth"},
    "activation": {},
}


def job_dirs(sweep: Path) -> list[Path]:
    """The sweep's job folders (those holding a Hydra config), in job-number order."""
    jobs = [p.parent.parent for p in sweep.glob("*/.hydra/config.yaml")]
    return sorted(jobs, key=lambda p: (int(p.name.split("_")[0]) if p.name.split("_")[0].isdigit()
                                       else 1 << 30, p.name))


def study_name(sweep: Path, jobs: list[Path]) -> str | None:
    """``study.name`` of the sweep (from multirun.yaml, else the first job's config)."""
    for path in [sweep / "multirun.yaml"] + [j / ".hydra" / "config.yaml" for j in jobs[:1]]:
        if path.is_file():
            name = OmegaConf.select(OmegaConf.load(path), "study.name", default=None)
            if name:
                return str(name)
    return None


def _value(text: str):
    """An override's value as YAML reads it (numbers, booleans, null), else the string."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def job_row(job: Path, study: str | None) -> dict:
    """One table row: job, status, seed, choices, the study's config values, metrics, diagnostics."""
    cfg = OmegaConf.load(job / ".hydra" / "config.yaml")
    summary = read_summary(job) or {"status": "missing", "metrics": {}}
    row = {"job": job.name, "status": summary["status"], "seed": cfg.get("seed")}
    for override in OmegaConf.load(job / ".hydra" / "overrides.yaml"):
        key, _, value = str(override).lstrip("+~").partition("=")
        row[f"override:{key}"] = _value(value)
    choices = summary.get("choices", {})
    row["norm"] = choices.get("norm") or "none"
    row["activation"] = choices.get("activation") or "default"
    for column, key in CONFIG_COLUMNS.get(study, {}).items():
        row[column] = OmegaConf.select(cfg, key, default=None)
    for key in METRICS:
        value = summary["metrics"].get(key)
        row[key] = float(value) if value is not None else np.nan
    row["test/err"], row["trainset/err"] = 1 - row["test/acc"], 1 - row["trainset/acc"]
    row["wall_time_s"], row["n_params"] = summary.get("wall_time_s"), summary.get("n_params")
    diagnostics = read_diagnostics(job) or {}
    if diagnostics.get("history"):
        row["act_std_init"] = diagnostics["history"][0]["act_std"]
    if "shattered" in diagnostics:
        row["shattered_lag1"] = diagnostics["shattered"]["lag1"]
        row["shattered_gradient"] = diagnostics["shattered"]["gradient"]
    return row


def collect(sweep: Path, study: str | None) -> pd.DataFrame:
    """The table of all jobs; override columns that never vary are dropped."""
    rows = [job_row(job, study) for job in job_dirs(sweep)]
    if not rows:
        raise FileNotFoundError(f"{sweep} holds no job folders (*/.hydra/config.yaml); "
                                "give the folder of a multirun")
    table = pd.DataFrame(rows)
    constant = [c for c in table if c.startswith("override:") and table[c].astype(str).nunique() <= 1]
    return table.drop(columns=constant)


def over_seeds(table: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Mean, std and count of ``value`` over the seeds of each ``by`` group (NaNs skipped)."""
    grouped = table.groupby(by, dropna=False)[value]
    return grouped.agg(["mean", "std", "count"]).reset_index().sort_values(by)


def _errorbar(ax, stats: pd.DataFrame, x: str, label: str, scale: float = 1.0, **kwargs) -> None:
    ax.errorbar(stats[x], stats["mean"] * scale, yerr=stats["std"].fillna(0) * scale, capsize=3,
                marker="o", label=label, **kwargs)


def _value_ticks(ax, values: pd.Series) -> None:
    """Ticks at exactly the swept values of a log axis, labelled plainly."""
    ticks = sorted(values.dropna().unique())
    ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
    ax.minorticks_off()


def _variant(row: pd.Series) -> str:
    name = "residual" if row["residual"] else "plain"
    return name + (f" + {row['norm']}" if row["norm"] != "none" else "")


def _mean(table: pd.DataFrame, value: str) -> float:
    return float(table[value].mean())


def plot_depth(table: pd.DataFrame, fig: Figure) -> list[str]:
    table = table.assign(variant=table.apply(_variant, axis=1))
    axes = fig.subplots(1, 2)
    for variant, part in table.groupby("variant"):
        _errorbar(axes[0], over_seeds(part, ["depth"], "trainset/loss"), "depth", variant)
        _errorbar(axes[1], over_seeds(part, ["depth"], "test/err"), "depth", variant, scale=100)
    for ax, title in zip(axes, ("training loss (whole training set)", "test error (%)")):
        ax.set(xscale="log", xlabel="hidden layers", title=title)
        _value_ticks(ax, table["depth"])
        ax.legend()
    axes[0].set_yscale("log")
    lines = []
    for variant, part in table.groupby("variant"):
        mid, deep = part[part["depth"].between(8, 16)], part[part["depth"] >= 32]
        if len(mid) and len(deep):
            lines.append(f"{variant}: training loss {_mean(mid, 'trainset/loss'):.3f} at 8-16 layers vs "
                         f"{_mean(deep, 'trainset/loss'):.3f} at 32+; test error "
                         f"{100 * _mean(mid, 'test/err'):.1f}% vs {100 * _mean(deep, 'test/err'):.1f}%")
    return lines


def _rank_correlation(x: pd.Series, y: pd.Series) -> float:
    ok = x.notna() & y.notna()
    return float(x[ok].rank().corr(y[ok].rank()))


def plot_batch_size(table: pd.DataFrame, fig: Figure) -> list[str]:
    axes = fig.subplots(1, 2)
    lines = []
    for ax, (part, x) in zip(axes, (("learning_rate", "lr"), ("batch_size", "batch_size"))):
        rows = table[table["part"] == part]
        if rows.empty:
            continue
        _errorbar(ax, over_seeds(rows, [x], "test/err"), x, "test", scale=100)
        _errorbar(ax, over_seeds(rows, [x], "trainset/err"), x, "training", scale=100, linestyle="--")
        fixed = "batch %d" % rows["batch_size"].iloc[0] if x == "lr" else "lr %g" % rows["lr"].iloc[0]
        ax.set(xscale="log", xlabel="learning rate" if x == "lr" else "batch size",
               ylabel="error (%)", title=f"({'a' if x == 'lr' else 'b'}) {fixed}")
        _value_ticks(ax, rows[x])
        ax.legend()
        stats = over_seeds(rows, [x], "test/err")
        first, last = stats.iloc[0], stats.iloc[-1]
        lines.append(f"{x}: test error {100 * first['mean']:.1f}% at {first[x]:g} -> "
                     f"{100 * last['mean']:.1f}% at {last[x]:g}; Spearman rho(test error, {x}) = "
                     f"{_rank_correlation(rows[x], rows['test/err']):+.2f}; training error <= "
                     f"{100 * rows['trainset/err'].max():.1f}%")
    return lines


def plot_l2(table: pd.DataFrame, fig: Figure) -> list[str]:
    ax = fig.subplots()
    for value, label, style in (("test/err", "test", "-"), ("trainset/err", "training", "--")):
        _errorbar(ax, over_seeds(table, ["l2"], value), "l2", label, scale=100, linestyle=style)
    positive = table.loc[table["l2"] > 0, "l2"]
    ax.set_xscale("symlog", linthresh=float(positive.min()) if len(positive) else 1e-6)
    ax.set(xlabel="L2 penalty lambda", ylabel="error (%)", title="error vs explicit L2 penalty")
    ax.legend()
    stats = over_seeds(table, ["l2"], "test/err")
    best = stats.loc[stats["mean"].idxmin()]
    return [f"test error {100 * stats.iloc[0]['mean']:.1f}% at lambda={stats.iloc[0]['l2']:g}; best "
            f"{100 * best['mean']:.1f}% at lambda={best['l2']:g}; "
            f"{100 * stats.iloc[-1]['mean']:.1f}% at lambda={stats.iloc[-1]['l2']:g}"]


def plot_init(table: pd.DataFrame, fig: Figure) -> list[str]:
    axes = fig.subplots(1, 2)
    lines = []
    for std, part in table.groupby("init_std"):
        profiles = [p for p in part.get("act_std_init", []) if isinstance(p, list)]
        if profiles:
            profile = np.exp(np.log(np.maximum(np.array(profiles, dtype=float), 1e-38)).mean(0))
            axes[0].plot(range(len(profile)), profile, marker=".", label=f"std {std:g}")
            lines.append(f"init std {std:g}: activation std {profile[0]:.3g} at layer 0 -> "
                         f"{profile[-2]:.3g} at the last hidden layer; test error "
                         f"{100 * _mean(part, 'test/err'):.1f}%")
    axes[0].set(yscale="log", xlabel="layer", ylabel="std of the layer's output",
                title="activations at initialisation")
    axes[0].legend(fontsize="small")
    _errorbar(axes[1], over_seeds(table, ["init_std"], "test/err"), "init_std", "test", scale=100)
    _errorbar(axes[1], over_seeds(table, ["init_std"], "trainset/err"), "init_std", "training",
              scale=100, linestyle="--")
    axes[1].set(xscale="log", xlabel="init std", ylabel="error (%)", title="error after training")
    _value_ticks(axes[1], table["init_std"])
    axes[1].legend()
    return lines


def plot_activation(table: pd.DataFrame, fig: Figure) -> list[str]:
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


def plot_shattered(table: pd.DataFrame, fig: Figure) -> list[str]:
    table = table.assign(variant=table.apply(_variant, axis=1))
    axes = fig.subplots(1, 2)
    lines = []
    deepest = table["depth"].max()
    for variant, part in table.groupby("variant"):
        stats = over_seeds(part, ["depth"], "shattered_lag1")
        _errorbar(axes[0], stats, "depth", variant)
        lines.append(f"{variant}: lag-1 autocorrelation {stats.iloc[0]['mean']:.3f} at depth "
                     f"{stats.iloc[0]['depth']:g} -> {stats.iloc[-1]['mean']:.3f} at depth {stats.iloc[-1]['depth']:g}")
        trace = part.loc[part["depth"] == deepest, "shattered_gradient"].iloc[0]
        trace = np.asarray(trace, dtype=float)
        axes[1].plot(np.linspace(0, 1, len(trace)), trace / (np.abs(trace).max() or 1), lw=0.8,
                     label=variant)
    axes[0].set(xscale="log", xlabel="hidden layers", ylabel="autocorrelation at lag 1",
                title="gradient autocorrelation at init")
    _value_ticks(axes[0], table["depth"])
    axes[0].legend()
    axes[1].set(xlabel="position t along the input line", ylabel="d output / dt (scaled)",
                title=f"gradients along a line, {deepest} layers")
    axes[1].legend(fontsize="small")
    return lines


PLOTS: dict[str, Callable[[pd.DataFrame, Figure], list[str]]] = {
    "depth_vs_performance": plot_depth, "batch_size": plot_batch_size, "l2": plot_l2,
    "init": plot_init, "activation": plot_activation, "shattered_gradients": plot_shattered,
}


def _log_to_wandb(sweep: Path, study: str, table: pd.DataFrame, png: Path) -> None:
    """Log the figure and the table to W&B when the sweep's jobs did (offline unless logged in)."""
    cfg = OmegaConf.load(job_dirs(sweep)[0] / ".hydra" / "config.yaml")
    settings = OmegaConf.select(cfg, "logger.wandb", default=None)
    if settings is None:
        return
    import wandb

    run = wandb.init(project=settings.get("project", "dlstudies"), group=sweep.name, job_type="report",
                     name=f"{study}-report", dir=str(sweep), mode="offline" if wandb_offline() else "online")
    plain = table.drop(columns=[c for c in table if table[c].map(lambda v: isinstance(v, list)).any()])
    run.log({f"{study}/figure": wandb.Image(str(png)), f"{study}/table": wandb.Table(dataframe=plain)})
    run.finish()


def report(sweep: str | Path, use_wandb: bool = True) -> dict[str, Path]:
    """Write the sweep's table, figure and trends; return their paths by kind."""
    register_resolvers()
    sweep = Path(sweep).expanduser()
    if not sweep.is_dir():
        raise FileNotFoundError(f"{sweep} is not a folder; give the folder of a multirun")
    study = study_name(sweep, job_dirs(sweep))
    table = collect(sweep, study)
    name = study or "sweep"
    outputs = {"csv": sweep / f"{name}.csv"}
    table.to_csv(outputs["csv"], index=False)
    counts = table["status"].value_counts().to_dict()
    lines = [f"{name}: {len(table)} jobs " + ", ".join(f"{n} {s}" for s, n in counts.items())]
    finished = table[table["status"].isin(["completed", "diverged"])]
    if study in PLOTS and len(finished):
        fig = Figure(figsize=(11, 4.2), layout="constrained")
        lines += PLOTS[study](finished, fig)
        fig.suptitle(f"{study} ({sweep.name})")
        outputs["png"] = sweep / f"{study}.png"
        fig.savefig(outputs["png"], dpi=120)
    outputs["txt"] = sweep / f"{name}.txt"
    outputs["txt"].write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print("wrote " + ", ".join(str(p) for p in outputs.values()))
    if use_wandb and "png" in outputs:
        _log_to_wandb(sweep, name, table, outputs["png"])
    return outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", help="the multirun folder, e.g. outputs/batch_size/multiruns/<time>")
    parser.add_argument("--no-wandb", action="store_true", help="do not log the figure to W&B")
    args = parser.parse_args()
    try:
        report(args.sweep, use_wandb=not args.no_wandb)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
