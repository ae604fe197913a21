"""``summary.json``: the machine-readable record of one run, read by the sweep report and resume."""

import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from dlstudies.callbacks.divergence import StopOnDivergence
from dlstudies.files import write_text

SUMMARY = "summary.json"


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


def _hydra_record() -> dict:
    """The command's overrides and the option chosen in every config group."""
    if not HydraConfig.initialized():
        return {"overrides": [], "choices": {}}
    hydra_cfg = HydraConfig.get()
    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra")}
    return {"overrides": list(hydra_cfg.overrides.task), "choices": choices}


class RunRecord:
    """What ``summary.json`` holds for one run: filled in step by step, written however the run ends.

    ``data`` keeps the run's overrides and choices, status (running, completed, diverged, failed),
    action (started, resumed), parameter count, seed, threads, GPUs held, folder, metrics (with
    ``best/<monitor>``), best checkpoint, samples, error, start and end (Unix time), wall time and
    steps.
    """

    def __init__(self, cfg: DictConfig, action: str, n_params: int, started: float,
                 gpus: list[str] | None = None) -> None:
        self.run_dir, self.started = Path(cfg.paths.output_dir), started
        self.data: dict = {**_hydra_record(), "status": "running",
                           "action": "resumed" if action == "resume" else "started",
                           "n_params": n_params, "seed": cfg.seed, "threads": torch.get_num_threads(),
                           "gpus": gpus, "output_dir": str(self.run_dir), "metrics": {},
                           "started": started}

    @contextmanager
    def saved_on_exit(self, trainer: L.Trainer) -> Iterator[None]:
        """Around fitting and testing: an error marks the run failed (and propagates); on every
        exit the wall time and steps are added and rank zero writes ``summary.json``."""
        try:
            yield
        except BaseException as error:
            self.data.update(status="failed", error=f"{type(error).__name__}: {error}")
            raise
        finally:
            self.data["ended"] = time.time()
            self.data["wall_time_s"] = round(self.data["ended"] - self.started, 2)
            self.data["steps"] = trainer.global_step
            if trainer.is_global_zero:
                write_summary(self.run_dir, self.data)

    def fitted(self, trainer: L.Trainer, divergence: StopOnDivergence) -> None:
        """The metrics at the end of fitting, the best checkpoint and its score, and the status."""
        metrics = self.data["metrics"] = {k: float(v) for k, v in trainer.callback_metrics.items()}
        checkpoint = trainer.checkpoint_callback
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

    def sampled(self, texts: list[str] | None) -> None:
        """The texts the model generated, when it generated any."""
        if texts is not None:
            self.data["samples"] = texts
