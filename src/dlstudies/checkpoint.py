"""Load a dlstudies checkpoint safely: ``weights_only`` unpickling, model rebuilt from plain data."""

from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from dlstudies.config.errors import ConfigError


def read_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict:
    """The checkpoint's contents, or a one-line ConfigError for a missing, truncated or foreign file
    that names it as the config does (``key``: ``ckpt_path``, ``model.pretrained``)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{key}={path} does not exist; give the path of a .ckpt file")
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:  # torch.load fails on other files in many ways (unpickling, zip, index errors)
        raise ConfigError(f"{key}={path} is not a readable checkpoint: truncated, or not a "
                          "PyTorch checkpoint of plain tensors and data") from None
    if not isinstance(checkpoint, dict) or "dlstudies" not in checkpoint:
        raise ConfigError(f"{key}={path} is not a dlstudies checkpoint (no run config inside)")
    return checkpoint


def load_module(path: str | Path) -> tuple[L.LightningModule, DictConfig]:
    """Rebuild the trained LightningModule and its run config from a checkpoint, in eval mode."""
    checkpoint = read_checkpoint(path)
    meta = checkpoint["dlstudies"]
    config = OmegaConf.create(meta["config"])
    module = instantiate(config.model, **meta["model_kwargs"])
    module.load_state_dict(checkpoint["state_dict"])
    return module.eval(), config


def check_resumable(checkpoint: dict, module: L.LightningModule, path: str | Path) -> None:
    """One line when the checkpoint holds the weights of another model or size than ``module``
    (resuming without the overrides it was trained with), where Lightning fails with a traceback."""
    shapes = {name: tuple(weights.shape) for name, weights in module.state_dict().items()}
    if {name: tuple(weights.shape) for name, weights in checkpoint["state_dict"].items()} != shapes:
        raise ConfigError(f"ckpt_path={path} holds the weights of another model or size than this run "
                          "builds; resume with the overrides it was trained with (its .hydra/overrides.yaml)")
