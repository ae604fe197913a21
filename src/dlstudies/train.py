"""Train one configuration: ``python train.py [group=option ...] [key=value ...] [-m]``."""

import os
import sys
import time
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from dlstudies import CONF_DIR
from dlstudies.callbacks.divergence import StopOnDivergence
from dlstudies.callbacks.metadata import CheckpointMetadata
from dlstudies.config.argv import check_choices
from dlstudies.config.errors import ConfigError, one_line
from dlstudies.config.resolvers import register_resolvers
from dlstudies.config.validation import validate
from dlstudies.launch import forget_ddp_job, place_job, resume_point, run_ddp_ranks_from_job_config
from dlstudies.summary import read_summary, write_summary

console = Console()
errors = Console(stderr=True)
register_resolvers()  # on import: launcher workers import this module before resolving hydra.sweep.dir


def _hydra_record() -> dict:
    if not HydraConfig.initialized():
        return {"overrides": [], "choices": {}}
    hydra_cfg = HydraConfig.get()
    choices = {k: v for k, v in hydra_cfg.runtime.choices.items() if not k.startswith("hydra")}
    return {"overrides": list(hydra_cfg.overrides.task), "choices": choices}


def _report(metrics: dict, samples: list[str], run_dir: Path, status: str) -> None:
    shown = {k: v for k, v in metrics.items() if k.split("/")[0] in ("val", "test", "best")}
    console.print(f"[bold]status[/bold] {status}  " + "  ".join(f"{k} {v:.4f}" for k, v in shown.items()))
    if samples:
        console.print("[bold]samples[/bold] " + " | ".join(repr(s) if "\n" in s else s for s in samples))
    console.print(f"[bold]run folder[/bold] {run_dir}", soft_wrap=True)  # one copyable line


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule]:
    """Data (loaded and tokenized once) and model; bad data or arguments fail here in one line."""
    try:
        datamodule = instantiate(cfg.data)
        datamodule.setup("fit")
        module = instantiate(cfg.model, **datamodule.model_kwargs())
    except (InstantiationException, ValueError, FileNotFoundError) as error:
        raise one_line(error) from None
    return datamodule, module


def build_trainer(cfg: DictConfig, callbacks: list[L.Callback], loggers: list) -> L.Trainer:
    """The Trainer with the callbacks group's callbacks; ``trainer.enable_progress_bar=false``
    drops the group's progress bar instead of failing on it."""
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None] + callbacks
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    try:
        return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    except (InstantiationException, ValueError) as error:
        raise one_line(error) from None


def train(cfg: DictConfig, gpus: list[str] | None = None) -> dict:
    """Build data, model, callbacks, loggers and Trainer from ``cfg``; fit, test, record
    (with the names of the ``gpus`` that ``place_job`` claimed for it)."""
    validate(cfg)
    run_dir = Path(cfg.paths.output_dir)
    action, ckpt_path = resume_point(cfg)
    if action == "skip":
        console.print(f"[bold]skipped[/bold] (already finished) {run_dir}", soft_wrap=True)
        return {**read_summary(run_dir), "action": "skipped"}
    env_before = set(os.environ)
    start = time.time()
    config = OmegaConf.to_container(cfg, resolve=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule, module = build(cfg)
    divergence = StopOnDivergence()
    loggers = [instantiate(c) for c in cfg.logger.values() if c is not None]
    if "ddp" in str(cfg.trainer.get("strategy", "")) and HydraConfig.initialized():
        run_ddp_ranks_from_job_config(cfg, ckpt_path)
    trainer = build_trainer(cfg, [divergence, CheckpointMetadata(config)], loggers)
    record = {**_hydra_record(), "status": "running", "action": {"resume": "resumed"}.get(action, "started"),
              "n_params": module.n_params, "seed": cfg.seed, "threads": torch.get_num_threads(),
              "output_dir": str(run_dir), "metrics": {}, "gpus": gpus, "started": start}
    for logger in loggers:
        logger.log_hyperparams({**config, "n_params": module.n_params})
    samples: list[str] = []
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        record["metrics"] = {k: float(v) for k, v in trainer.callback_metrics.items()}
        checkpoint = trainer.checkpoint_callback
        if checkpoint is not None and checkpoint.best_model_score is not None:
            record["metrics"][f"best/{checkpoint.monitor}"] = float(checkpoint.best_model_score)
            record["best_ckpt"] = checkpoint.best_model_path
        record["status"] = "diverged" if divergence.diverged else "completed"
        if divergence.diverged:
            record["diverged"] = divergence.describe()
        elif cfg.test and datamodule.test_dataloader():
            best = "best" if record.get("best_ckpt") else None
            for results in trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False):
                record["metrics"].update({k: float(v) for k, v in results.items()})
        if hasattr(module, "sample") and cfg.samples and not divergence.diverged:
            samples = module.sample(cfg.samples, seed=cfg.seed)
            record["samples"] = samples
            for logger in loggers:
                if isinstance(logger, WandbLogger):
                    logger.log_text("samples", columns=["sample"], data=[[s] for s in samples])
    except BaseException as error:
        record.update(status="failed", error=f"{type(error).__name__}: {error}")
        raise
    finally:
        record["ended"] = time.time()
        record["wall_time_s"] = round(record["ended"] - start, 2)
        record["steps"] = trainer.global_step
        if trainer.is_global_zero:
            write_summary(run_dir, record)
        for logger in loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.finish()  # the next job of a multirun gets its own W&B run
        forget_ddp_job(env_before)
    if trainer.is_global_zero:
        _report(record["metrics"], samples, run_dir, record["status"])
    return record


def run_job(cfg: DictConfig) -> float | None:
    """One Hydra job. Module-level and undecorated, so the joblib launcher pickles it by name."""
    try:
        with place_job(cfg) as gpus:  # threads and GPUs for this job, released however it ends
            record = train(cfg, gpus)
    except ConfigError as error:
        errors.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        sys.exit(2)
    if record["status"] == "diverged":
        console.print(f"[red]diverged:[/red] {record['diverged']}", highlight=False, soft_wrap=True)
        if HydraConfig.get().mode == RunMode.RUN:
            sys.exit(1)  # a lone run fails loudly; inside a multirun the sweep carries on
        return float("nan")
    metric = cfg.get("optimized_metric")
    return record["metrics"].get(metric) if metric else None


_hydra_main = hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")(run_job)


def main() -> None:
    """Console entry point: check group options in one line, then hand over to Hydra."""
    torch.set_float32_matmul_precision("high")
    try:
        check_choices(sys.argv[1:])
    except ConfigError as error:
        errors.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        sys.exit(2)
    _hydra_main()


if __name__ == "__main__":
    main()
