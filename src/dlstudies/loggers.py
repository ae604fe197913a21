"""The run's loggers (the ``logger`` group), and what W&B needs beyond Lightning's ``WandbLogger``:
the offline decision, tables, and one W&B run per job."""

import netrc
import os

from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig


def wandb_offline() -> bool:
    """Offline unless the user is logged in (API key or netrc entry); WANDB_MODE wins if set."""
    if os.environ.get("WANDB_MODE") or os.environ.get("WANDB_API_KEY"):
        return False
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is None
    except (FileNotFoundError, netrc.NetrcParseError):
        return True


def build_loggers(cfg: DictConfig) -> list[Logger]:
    """Every logger the ``logger`` group lists (none for ``logger=none``)."""
    return [instantiate(c) for c in cfg.logger.values() if c is not None]


def log_config(loggers: list[Logger], config: dict, n_params: int) -> None:
    """The resolved run config and the parameter count, as every logger's hyperparameters."""
    for logger in loggers:
        logger.log_hyperparams({**config, "n_params": n_params})


def log_table(loggers: list[Logger], key: str, columns: list[str], rows: list[list]) -> None:
    """A table for the loggers that show tables (W&B); the others have no place for one."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_text(key, columns=columns, data=rows)


def finish(loggers: list[Logger]) -> None:
    """End this job's W&B run, so the next job of a multirun (same process) opens its own."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()
