"""The run's loggers (the ``logger`` group), and what W&B needs beyond Lightning's ``WandbLogger``:
never waiting for an unreachable server (whether to log online at all is
``config/wandb_login.py``'s decision), one W&B run per job folder (continued when the job
resumes), tags, the best validation value in the run summary, tables and images, and the run's
outcome when it ends."""

import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from dlstudies.config.wandb_login import wandb_server

RUN_FOLDER = re.compile(r"(?:offline-)?run-\d{8}_\d{6}-(\w+)")  # wandb/<this>: a W&B run and its id


def answers(url: str, timeout_s: float) -> bool:
    """Whether the server at ``url`` answers within ``timeout_s`` with anything but a server error."""
    try:
        urllib.request.urlopen(url, timeout=timeout_s).close()
    except urllib.error.HTTPError as error:
        return error.code < 500
    except OSError:  # no network, unknown host, connection refused, timed out
        return False
    return True


def wandb_logger(offline: bool = False, connect_timeout_s: float = 5.0, log_model: bool | str = False,
                 **kwargs) -> WandbLogger:
    """Lightning's ``WandbLogger`` that never costs a run: when the W&B server does not answer
    within ``connect_timeout_s`` (no network, a cluster node without internet, an outage), the run
    logs offline and says how to upload it later, instead of waiting minutes and failing; and
    checkpoints are uploaded (``log_model``) only online, where Lightning would refuse offline."""
    mode = os.environ.get("WANDB_MODE", "online")
    offline = offline or mode in ("offline", "dryrun")
    if not offline and mode != "disabled" and not answers(wandb_server(), connect_timeout_s):
        offline = True
        folder = Path(kwargs.get("save_dir") or ".") / "wandb"
        _say(f"W&B ({wandb_server()}) cannot be reached (waited up to {connect_timeout_s} s): logging offline; "
             f"upload later with: wandb sync {folder}/offline-run-*")
    if offline and log_model:
        _say("W&B is offline: checkpoints are not uploaded (logger.wandb.log_model needs W&B online)")
        log_model = False
    return WandbLogger(offline=offline, log_model=log_model, **kwargs)


def _say(line: str) -> None:
    Console(stderr=True).print(f"[yellow]wandb:[/yellow] {line}", highlight=False, soft_wrap=True)


def wandb_run_id(run_dir: str | Path) -> str | None:
    """The id of the W&B run a run folder logged to (its latest one), None when it has none."""
    names = sorted(p.name for p in (Path(run_dir) / "wandb").glob("*run-*"))
    ids = [m[1] for m in map(RUN_FOLDER.fullmatch, names) if m]
    return ids[-1] if ids else None


def _tags(cfg: DictConfig) -> list[str]:
    """The model and data options, and the study, as W&B tags (model:mlp, data:names, study:l2)."""
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    tags = [f"{group}:{choices[group]}" for group in ("model", "data") if choices.get(group)]
    study = OmegaConf.select(cfg, "study.name", default=None)
    return tags + ([f"study:{study}"] if study else [])


def build_loggers(cfg: DictConfig, resumed_from: str | Path | None = None) -> list[Logger]:
    """Every logger the ``logger`` group lists (none for ``logger=none``). A W&B run continues the
    one its job folder, or the run folder it resumes from (``resumed_from``), logged to: a re-run
    sweep or ``ckpt_path=`` adds to the same W&B run instead of opening a second one."""
    loggers = []
    for node in (n for n in cfg.logger.values() if n is not None):
        if not str(node.get("_target_", "")).endswith("wandb_logger"):
            loggers.append(instantiate(node))
            continue
        run_id = wandb_run_id(cfg.paths.output_dir) or (resumed_from and wandb_run_id(resumed_from))
        resume = {"id": run_id, "resume": "allow"} if run_id else {}
        loggers.append(instantiate(node, tags=[*(node.get("tags") or []), *_tags(cfg)], **resume))
    return loggers


def log_config(loggers: list[Logger], config: dict, n_params: int) -> None:
    """The resolved run config and the parameter count, as every logger's hyperparameters."""
    for logger in loggers:
        logger.log_hyperparams({**config, "n_params": n_params})


def watch_best(loggers: list[Logger], checkpoint: ModelCheckpoint | None) -> None:
    """W&B's run summary keeps the best value of the checkpoint's monitored metric (its min or
    max), not the last one logged."""
    if checkpoint is None or checkpoint.monitor is None:
        return
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.define_metric(checkpoint.monitor, summary=checkpoint.mode)


def log_table(loggers: list[Logger], key: str, columns: list[str], rows: list[list]) -> None:
    """A table for the loggers that show tables (W&B); the others have no place for one."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_text(key, columns=columns, data=rows)


def log_image(loggers: list[Logger], key: str, path: Path) -> None:
    """An image file for the loggers that show images (W&B)."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key, [str(path)])


def finish(loggers: list[Logger], status: str) -> None:
    """End this job's W&B run with its outcome: ``status`` in the run summary and a non-zero exit
    code unless it completed, so W&B shows diverged, failed and interrupted runs as failed. The
    next job of a multirun (same process) then opens its own run."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.summary["status"] = status
            logger.experiment.finish(exit_code=0 if status == "completed" else 1)
