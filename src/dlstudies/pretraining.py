"""One pre-training run per recipe, shared by every job that fine-tunes from it.

A fine-tuning job may name a pre-training experiment instead of a checkpoint
(``model.pretrained=names_bert_mlm``). Its run is kept under ``<cache_dir>/<experiment>-<key>/``,
the key a hash of the recipe's composed config, so a changed recipe trains afresh. The jobs of a
multirun start independently (joblib workers, SLURM array tasks), so the first job that needs the
run trains it while holding an ``flock`` on ``<key>.lock``; the others block on the lock, then
find the finished run and reuse it. The kernel drops the lock however its holder ends, so a
killed pre-training is simply redone by the next job. The run is a separate ``python -m
dlstudies.train`` process: its config, folder, summary and loggers are its own, untangled from
the job's Hydra state.
"""

import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from dlstudies import CONF_DIR
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


def pretrained_run(experiment: str, overrides: list[str], cache_dir: str | Path,
                   device: list[str] | None = None) -> Path:
    """The best checkpoint of the recipe's run, training it first (once, under the lock) when no
    completed run exists. ``device``: trainer overrides that put it on this job's device."""
    run_dir = Path(cache_dir).expanduser() / f"{experiment}-{recipe_key(experiment, overrides)}"
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(run_dir.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes or the process dies
        if (read_summary(run_dir) or {}).get("status") != "completed":
            _train(experiment, overrides, run_dir, device or [])
    return run_dir / "checkpoints" / "best.ckpt"


def _train(experiment: str, overrides: list[str], run_dir: Path, device: list[str]) -> None:
    """Run the recipe into ``run_dir``, its output in ``run_dir``.log. The jobs that wait for it
    are idle, so it takes every core this process may use."""
    log = run_dir.with_suffix(".log")
    print(f"pre-training experiment={experiment} into {run_dir} (log: {log})", file=sys.stderr, flush=True)
    command = [sys.executable, "-m", "dlstudies.train", f"experiment={experiment}", *overrides, *device,
               f"hydra.run.dir={run_dir}", f"threads={os.cpu_count() or 1}",
               "trainer.enable_progress_bar=false"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLS_SWEEP")}  # not a sweep job
    with open(log, "w") as out:
        status = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    if status != 0:
        raise RuntimeError(f"pre-training experiment={experiment} failed (exit {status}); see {log}")
