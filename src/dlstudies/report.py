"""Tables and figures of a finished (or partly finished) sweep:
``python -m dlstudies.report <sweep folder>`` (or ``dlstudies-report``).

Reads every job folder's ``summary.json`` (status, metrics), ``.hydra/config.yaml`` (what the job
ran) and ``diagnostics.json`` (per-layer stds), and writes into the sweep folder ``<study>.csv``
(one row per job, diverged and failed jobs included), ``<study>.png`` (the study's figure) and
``<study>.txt`` (the trends in numbers, also printed). The study is the sweep's ``study.name``;
its module ``dlstudies.studies.<study.name>`` adds its columns and draws (see
``dlstudies.studies``); a sweep without one gets the table only. When the jobs logged to W&B,
the figure and table are logged to a W&B run of the sweep's group as well.

``python -m dlstudies.report <study>.csv`` redraws the figure and trends from a table a report
wrote before (docs/figures/*.csv), beside it, when only the drawing changed: the jobs' folders
are no longer needed.
"""

import argparse
import ast
import importlib
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import yaml
from hydra.utils import get_class
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure state
from omegaconf import OmegaConf

from dlstudies.callbacks.diagnostics import read_diagnostics
from dlstudies.config.resolvers import register_resolvers
from dlstudies.config.wandb_login import wandb_offline
from dlstudies.summary import read_summary


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


def study_module(study: str | None) -> ModuleType | None:
    """The study's report module, ``dlstudies.studies.<study>``; None when there is none."""
    if not study or importlib.util.find_spec(f"dlstudies.studies.{study}") is None:
        return None
    return importlib.import_module(f"dlstudies.studies.{study}")


def _value(text: str):
    """An override's value as YAML reads it (numbers, booleans, null), else the string."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def metric(metrics: dict, key: str) -> float:
    """A job's metric (NaN when it has none); an error rate ``<split>/err`` it did not record is
    1 - that split's accuracy."""
    if key.endswith("/err") and key not in metrics:
        return 1 - metric(metrics, key.removesuffix("err") + "acc")
    value = metrics.get(key)
    return float(value) if value is not None else np.nan


def job_row(job: Path, study: ModuleType | None) -> dict:
    """One table row: job, status, seed, choices, the study's config values, the metrics the job's
    task declares (``STUDY_METRICS``), diagnostics and what the study reads from the job's folder."""
    cfg = OmegaConf.load(job / ".hydra" / "config.yaml")
    summary = read_summary(job) or {"status": "missing", "metrics": {}}
    row = {"job": job.name, "status": summary["status"], "seed": cfg.get("seed"),
           "study": OmegaConf.select(cfg, "study.name", default=None),
           "sweep": (summary.get("choices") or {}).get("sweep"),
           "scale": OmegaConf.select(cfg, "study.scale", default=None)}
    for override in OmegaConf.load(job / ".hydra" / "overrides.yaml"):
        key, _, value = str(override).lstrip("+~").partition("=")
        row[f"override:{key}"] = _value(value)
    choices = summary.get("choices", {})
    row["norm"] = choices.get("norm") or "none"
    row["activation"] = choices.get("activation") or "default"
    for column, key in (study.COLUMNS if study else {}).items():
        row[column] = OmegaConf.select(cfg, key, default=None)
    for key in get_class(cfg.model._target_).STUDY_METRICS:
        row[key] = metric(summary["metrics"], key)
    row["wall_time_s"], row["n_params"] = summary.get("wall_time_s"), summary.get("n_params")
    diagnostics = read_diagnostics(job) or {}
    if diagnostics.get("history"):
        row["act_std_init"] = diagnostics["history"][0]["act_std"]
    if hasattr(study, "job_values"):  # optional: only studies that read more than the summary
        row |= study.job_values(job)
    return row


def collect(sweep: Path, study: ModuleType | None) -> pd.DataFrame:
    """The table of all jobs; override columns that never vary are dropped."""
    rows = [job_row(job, study) for job in job_dirs(sweep)]
    if not rows:
        raise FileNotFoundError(f"{sweep} holds no job folders (*/.hydra/config.yaml); "
                                "give the folder of a multirun")
    table = pd.DataFrame(rows)
    constant = [c for c in table if c.startswith("override:") and table[c].astype(str).nunique() <= 1]
    return table.drop(columns=constant)


def _log_to_wandb(sweep: Path, study: str, table: pd.DataFrame, png: Path) -> None:
    """Log the figure and the table to W&B when the sweep's jobs did (offline unless logged in)."""
    cfg = OmegaConf.load(job_dirs(sweep)[0] / ".hydra" / "config.yaml")
    settings = OmegaConf.select(cfg, "logger.wandb", default=None)
    if settings is None:
        return
    import wandb

    mode = "offline" if wandb_offline() else None  # None: W&B's own choice, WANDB_MODE when it is set
    run = wandb.init(project=settings.get("project", "dlstudies"), group=sweep.name, job_type="report",
                     name=f"{study}-report", dir=str(sweep), mode=mode)
    plain = table.drop(columns=[c for c in table if table[c].map(lambda v: isinstance(v, list)).any()])
    run.log({f"{study}/figure": wandb.Image(str(png)), f"{study}/table": wandb.Table(dataframe=plain)})
    run.finish()


def title(study: str, table: pd.DataFrame) -> str:
    """The figure's title: the study, the sweep that ran it and its scale, never a folder's name."""
    first = table.iloc[0]
    sweep = first.get("sweep") if isinstance(first.get("sweep"), str) else study
    scale = f", scale {first['scale']}" if isinstance(first.get("scale"), str) else ""
    return f"{study} study: +sweep={sweep}{scale}, {len(table)} jobs"


def draw_and_write(table: pd.DataFrame, name: str, study: ModuleType | None, folder: Path,
                   stem: str) -> dict[str, Path]:
    """The study's figure ``<stem>.png`` (when it has a module and finished jobs) and trend lines
    ``<stem>.txt`` from the table, in ``folder``."""
    counts = table["status"].value_counts().to_dict()
    lines = [f"{name}: {len(table)} jobs " + ", ".join(f"{n} {s}" for s, n in counts.items())]
    finished = table[table["status"].isin(["completed", "diverged"])]
    outputs = {}
    if study and len(finished):
        fig = Figure(figsize=(11, 4.2), layout="constrained")  # the study may resize it
        lines += study.draw(finished, fig)
        fig.suptitle(title(name, table))
        outputs["png"] = folder / f"{stem}.png"
        fig.savefig(outputs["png"], dpi=120)
    outputs["txt"] = folder / f"{stem}.txt"
    outputs["txt"].write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return outputs


def read_table(path: Path) -> pd.DataFrame:
    """A table a report wrote, its list cells (curves, surfaces) parsed back into lists."""
    def parse(value):
        if not (isinstance(value, str) and value.startswith("[")):
            return value
        try:  # numbers, as Python writes them (nan, inf: JSON's NaN, Infinity)
            return json.loads(re.sub(r"\b(nan|inf)\b", lambda m: {"nan": "NaN", "inf": "Infinity"}[m[1]], value))
        except json.JSONDecodeError:  # strings
            return ast.literal_eval(value)

    return pd.read_csv(path).map(parse)


def report(sweep: str | Path, use_wandb: bool = True) -> dict[str, Path]:
    """Write the sweep's table, figure and trends; return their paths by kind. Given a table a
    report wrote (``<study>.csv``), redraw the figure and trends beside it instead."""
    register_resolvers()
    sweep = Path(sweep).expanduser()
    if sweep.suffix == ".csv" and sweep.is_file():
        table = read_table(sweep)
        name = table["study"].iloc[0]
        study = study_module(name)
        missing = [c for c in (study.COLUMNS if study else {}) if c not in table]  # added to the study since
        outputs = draw_and_write(table.reindex(columns=[*table, *missing]), name, study, sweep.parent, sweep.stem)
        print("wrote " + ", ".join(str(p) for p in outputs.values()))
        return outputs
    if not sweep.is_dir():
        raise FileNotFoundError(f"{sweep} is not a folder; give the folder of a multirun (or a report's .csv)")
    name = study_name(sweep, job_dirs(sweep))
    study = study_module(name)
    table = collect(sweep, study)
    name = name or "sweep"
    outputs = {"csv": sweep / f"{name}.csv"}
    table.to_csv(outputs["csv"], index=False)
    outputs |= draw_and_write(table, name, study, sweep, name)
    print("wrote " + ", ".join(str(p) for p in outputs.values()))
    if use_wandb and "png" in outputs:
        _log_to_wandb(sweep, name, table, outputs["png"])
    return outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", help="the multirun folder, e.g. outputs/batch_size/multiruns/+sweep=batch_size, "
                                      "or a table a report wrote (docs/figures/batch_size.csv)")
    parser.add_argument("--no-wandb", action="store_true", help="do not log the figure to W&B")
    args = parser.parse_args()
    try:
        report(args.sweep, use_wandb=not args.no_wandb)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
