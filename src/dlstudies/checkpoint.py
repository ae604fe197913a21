"""Load a dlstudies checkpoint safely: ``weights_only`` unpickling, model rebuilt from plain data."""

import pickle
import zipfile
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
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError):
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
