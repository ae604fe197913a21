"""Runs that a run needs trained first: the encoder a fine-tuning starts from, a frozen classifier
that scores samples, the trained model a sampling study reuses. One run per recipe, shared by
every job that needs it.

A task lists in ``TRAINED_FIRST`` its arguments that take a checkpoint; a config may give one of
them an experiment's name instead (``model.pretrained=names_bert_mlm``), and more overrides for
that experiment's run in ``trained_first.<experiment>``. train.py builds the task with the
checkpoint paths of those recipes' runs (``trained_first(cfg)``), so tasks receive checkpoint
paths only, then trains the runs still missing (``Recipe.train_once``) before fitting: bad input
stops before anything trains.

A recipe's run is kept under ``<paths.log_dir>/pretrained/<experiment>-<key>/``, the key a hash
of the recipe's composed config, so a changed recipe trains afresh. The jobs of a multirun start
independently (joblib workers, SLURM array tasks), so the first job that needs the run trains it
while holding an ``flock`` on ``<key>.lock``; the others block on the lock, then find the
finished run and reuse it. The kernel drops the lock however its holder ends, so a killed run is
simply redone by the next job. The run is a separate ``python -m dlstudies.train`` process on
this job's device: its config, folder, summary and loggers are its own, untangled from the job's
Hydra state.
"""

import fcntl
import hashlib
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from dlstudies import CONF_DIR
from dlstudies.config.argv import group_options
from dlstudies.summary import read_summary


def recipe_key(experiment: str, overrides: list[str]) -> str:
    """A hash of the config ``python train.py experiment=<experiment> <overrides>`` composes
    (interpolations unresolved: the text of every value that decides the run)."""
    arguments = [f"experiment={experiment}", *overrides]
    if GlobalHydra.instance().is_initialized():  # inside a Hydra job: compose with its search path
        cfg = compose("train", overrides=arguments)
    else:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=arguments)
    return hashlib.sha256(OmegaConf.to_yaml(cfg).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Recipe:
    """One experiment's run with extra ``overrides``, kept in ``run_dir`` (named by its key)."""

    experiment: str
    overrides: tuple[str, ...]
    run_dir: Path

    @classmethod
    def kept_in(cls, cache_dir: str | Path, experiment: str, overrides: Sequence[str] = ()) -> "Recipe":
        """The recipe whose run lives in ``<cache_dir>/<experiment>-<key>/``."""
        key = recipe_key(experiment, list(overrides))
        return cls(experiment, tuple(overrides), Path(cache_dir).expanduser() / f"{experiment}-{key}")

    @property
    def checkpoint(self) -> Path:
        """The best checkpoint of the run (there once it has trained)."""
        return self.run_dir / "checkpoints" / "best.ckpt"

    def train_once(self, device: Sequence[str] = ()) -> None:
        """Train the run unless a completed one exists, holding the lock while deciding and
        training. ``device``: trainer overrides that put it on this job's device."""
        self.run_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes or the process dies
            if (read_summary(self.run_dir) or {}).get("status") != "completed":
                _train(self.experiment, list(self.overrides), self.run_dir, list(device))


def _train(experiment: str, overrides: list[str], run_dir: Path, device: list[str]) -> None:
    """Run the recipe into ``run_dir``, its output in ``run_dir``.log. The jobs that wait for it
    are idle, so it takes every core this process may use."""
    log = run_dir.with_suffix(".log")
    print(f"training experiment={experiment} first, into {run_dir} (log: {log})", file=sys.stderr, flush=True)
    command = [sys.executable, "-m", "dlstudies.train", f"experiment={experiment}", *overrides, *device,
               f"hydra.run.dir={run_dir}", f"threads={os.cpu_count() or 1}",
               "trainer.enable_progress_bar=false"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLS_SWEEP")}  # not a sweep job
    with open(log, "w") as out:
        status = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    if status != 0:
        raise RuntimeError(f"training experiment={experiment} failed (exit {status}); see {log}")


def on_this_device(trainer: DictConfig) -> list[str]:
    """Trainer overrides that put a recipe's run where this job runs: the job's accelerator, on
    the first of the GPUs it holds (a list of devices), else on one device."""
    devices = trainer.get("devices", 1)
    first = f"[{devices[0]}]" if OmegaConf.is_list(devices) else 1
    return [f"trainer.accelerator={trainer.get('accelerator', 'auto')}", f"trainer.devices={first}"]


def trained_first(cfg: DictConfig) -> dict[str, Recipe]:
    """The task's ``TRAINED_FIRST`` arguments that name an experiment, each with that recipe (its
    overrides from ``trained_first.<experiment>``), kept under ``<paths.log_dir>/pretrained``."""
    experiments = group_options("experiment")
    named = {arg: cfg.model[arg] for arg in get_class(cfg.model._target_).TRAINED_FIRST
             if cfg.model.get(arg) in experiments}
    cache_dir = Path(cfg.paths.log_dir) / "pretrained"
    overrides = OmegaConf.select(cfg, "trained_first", default={})  # a config sets it only to add some
    return {arg: Recipe.kept_in(cache_dir, name, [str(o) for o in overrides.get(name, [])])
            for arg, name in named.items()}
