"""``summary.json``: the machine-readable record of one run, read by the sweep report and resume."""

import functools
import importlib.metadata
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from dlstudies import CHECKOUT
from dlstudies.callbacks.divergence import StopOnDivergence
from dlstudies.callbacks.interrupted import interruption
from dlstudies.checkpoint import saved_checkpoints
from dlstudies.files import write_text

SUMMARY = "summary.json"
COMMAND = "DLS_COMMAND"  # the command line, set by the train command for its launcher's workers too


def _plain(value):
    """Numbers as floats (NaN/inf as strings JSON can hold), tensors as Python numbers."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_summary(run_dir: str | Path, record: dict) -> Path:
    """Write ``record`` atomically so an interrupted run never leaves half a summary."""
    metrics = {k: _plain(v) for k, v in record.get("metrics", {}).items()}
    text = json.dumps({**record, "metrics": metrics}, indent=2, default=str)
    return write_text(Path(run_dir) / SUMMARY, text)


def read_summary(run_dir: str | Path) -> dict | None:
    """The run's summary, or None when the run never wrote one."""
    path = Path(run_dir) / SUMMARY
    return json.loads(path.read_text()) if path.is_file() else None


def write_failure(error: OSError, run_dir: str | Path) -> str:
    """One line for a write that failed (a full disk, a lost mount): the error with its file, the
    space left in that file's folder, and the last whole checkpoint, which the run keeps."""
    run_dir = Path(run_dir)
    folder = Path(error.filename).parent if error.filename else run_dir
    existing = next(p for p in (folder, *folder.parents) if p.exists())  # the folder may be what failed
    space = shutil.disk_usage(existing).free
    free = f"{space / 2**30:.1f} GB" if space >= 2**30 else f"{space / 2**20:.1f} MB"
    saved = saved_checkpoints(run_dir)  # every one is whole: they are written atomically
    kept = f"kept {saved[0].relative_to(run_dir)}, the last whole checkpoint" if saved else "no checkpoint saved yet"
    return f"{error}; {free} free in {folder}; {kept}"


def command_line() -> str:
    """This process's command line as the user can type it again (``python train.py ...``,
    ``python -m dlstudies.train ...``, ``dlstudies-train ...``)."""
    script = Path(sys.argv[0])
    if script.suffix != ".py" and "-m" not in sys.orig_argv:  # a console script
        return shlex.join([script.name, *sys.argv[1:]])
    return shlex.join(["python", *sys.orig_argv[1:]])


@functools.cache
def _git_commit() -> dict | None:
    """The commit of the checkout the code runs from and whether tracked files differ from it;
    None for an installed package, or without git."""
    if CHECKOUT is None or not (CHECKOUT / ".git").exists():
        return None
    try:
        git = functools.partial(subprocess.run, capture_output=True, text=True, timeout=30, check=True)
        commit = git(["git", "-C", str(CHECKOUT), "rev-parse", "HEAD"]).stdout.strip()
        changes = git(["git", "-C", str(CHECKOUT), "status", "--porcelain", "--untracked-files=no"]).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(changes.strip())}


def provenance() -> dict:
    """What reproduces a run besides its config: the command line, the git commit of a checkout
    (and whether the tree was dirty), and the versions of the code and its main libraries."""
    versions = {"dlstudies": importlib.metadata.version("dlstudies"), "torch": torch.__version__,
                "lightning": L.__version__, "hydra": hydra.__version__, "python": platform.python_version()}
    return {"command": os.environ.get(COMMAND), "git": _git_commit(), "versions": versions}


def best_checkpoint(trainer: L.Trainer) -> ModelCheckpoint | None:
    """The callback that keeps the best checkpoint (the first ``ModelCheckpoint``), if any."""
    return next((c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)), None)


def _hydra_record() -> dict:
    """The command's overrides and the option chosen in every config group."""
    if not HydraConfig.initialized():
        return {"overrides": [], "choices": {}}
    hydra_cfg = HydraConfig.get()
    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra")}
    return {"overrides": list(hydra_cfg.overrides.task), "choices": choices}


class RunRecord:
    """What ``summary.json`` holds for one run: filled in step by step, written however the run ends.

    ``data`` keeps the run's overrides and choices, its provenance (command, git commit,
    versions), status (running, completed, diverged, failed, interrupted), action (started,
    resumed), parameter count, seed, threads, GPUs held, folder, metrics (with ``best/<monitor>``),
    best checkpoint, samples (texts, or the path of their picture), error, start and end (Unix time),
    wall time and steps.
    """

    def __init__(self, cfg: DictConfig, action: str, n_params: int, started: float,
                 gpus: list[str] | None = None) -> None:
        self.run_dir, self.started = Path(cfg.paths.output_dir), started
        self.data: dict = {**_hydra_record(), **provenance(), "status": "running",
                           "action": "resumed" if action == "resume" else "started",
                           "n_params": n_params, "seed": cfg.seed, "threads": torch.get_num_threads(),
                           "gpus": gpus, "output_dir": str(self.run_dir), "metrics": {},
                           "started": started}

    @contextmanager
    def saved_on_exit(self, trainer: L.Trainer) -> Iterator[None]:
        """Around fitting and testing: an error marks the run failed (a failed write with the line
        ``write_failure`` gives), Ctrl-C or SIGTERM interrupted, and both propagate; on every exit
        the wall time and steps are added and rank zero writes ``summary.json``."""
        try:
            yield
        except BaseException as error:
            if stopped_by := interruption(error):
                self.data.update(status="interrupted", error=f"interrupted by {stopped_by}")
            elif isinstance(error, OSError):
                self.data.update(status="failed", error=write_failure(error, self.run_dir))
            else:
                self.data.update(status="failed", error=f"{type(error).__name__}: {error}")
            self._end(trainer, failing=True)
            raise
        self._end(trainer)

    def _end(self, trainer: L.Trainer, failing: bool = False) -> None:
        """Add the end, wall time and steps; rank zero writes ``summary.json``. When it cannot be
        written (the disk is still full), a run that is failing already reports its own error."""
        self.data["ended"] = time.time()
        self.data["wall_time_s"] = round(self.data["ended"] - self.started, 2)
        self.data["steps"] = trainer.global_step
        if not trainer.is_global_zero:
            return
        try:
            write_summary(self.run_dir, self.data)
        except OSError:
            if not failing:
                raise

    def fitted(self, trainer: L.Trainer, divergence: StopOnDivergence) -> None:
        """The metrics at the end of fitting, the best checkpoint and its score, and the status."""
        metrics = self.data["metrics"] = {k: float(v) for k, v in trainer.callback_metrics.items()}
        checkpoint = best_checkpoint(trainer)
        if checkpoint is not None and checkpoint.best_model_score is not None:
            metrics[f"best/{checkpoint.monitor}"] = float(checkpoint.best_model_score)
            self.data["best_ckpt"] = checkpoint.best_model_path
        self.data["status"] = "diverged" if divergence.diverged else "completed"
        if divergence.diverged:
            self.data["diverged"] = divergence.describe()

    def tested(self, results: list[dict]) -> None:
        """The test metrics (one dict per test loader)."""
        for result in results:
            self.data["metrics"].update({k: float(v) for k, v in result.items()})

    def sampled(self, texts: list[str] | None, figure: Path | None) -> None:
        """The texts the model generated, or the picture of its image or point samples (``samples``
        and ``samples_figure``), when it generated any."""
        if texts is not None:
            self.data["samples"] = texts
        if figure is not None:
            self.data["samples_figure"] = str(figure)
