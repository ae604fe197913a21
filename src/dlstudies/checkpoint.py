"""Write checkpoints whole or not at all; load them safely: ``weights_only`` unpickling, model rebuilt
from plain data; find the newest one a run can resume from."""

from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from dlstudies.config.errors import ConfigError
from dlstudies.files import write_torch


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, saving through ``files.write_torch``: a temporary file in the
    checkpoint's own folder, flushed to disk, renamed over the final name. Lightning's own fills a
    temporary file in the system temp folder and moves it into the run folder; across two
    filesystems that move is a copy, which a full disk or a kill cuts short under the final name."""

    def save_checkpoint(self, checkpoint: dict, path: str | Path, storage_options: object = None) -> None:
        write_torch(path, checkpoint)


def saved_checkpoints(run_dir: str | Path) -> list[Path]:
    """The checkpoints a run saved (``checkpoints/*.ckpt``: last, best, interrupted), newest first."""
    return sorted((Path(run_dir) / "checkpoints").glob("*.ckpt"), key=lambda c: c.stat().st_mtime, reverse=True)


def _load(file: Path) -> dict:
    """The contents of ``file``; a ValueError saying why it is not a dlstudies checkpoint."""
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:  # torch.load fails on other files in many ways (unpickling, zip, index errors)
        raise ValueError("not a readable checkpoint: truncated, or not a PyTorch checkpoint of plain "
                         "tensors and data") from None
    if not isinstance(checkpoint, dict) or "dlstudies" not in checkpoint:
        raise ValueError("not a dlstudies checkpoint (no run config inside)")
    return checkpoint


def read_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict:
    """The checkpoint's contents, or a one-line ConfigError for a missing, truncated or foreign file
    that names it as the config does (``key``: ``ckpt_path``, ``model.pretrained``)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{key}={path} does not exist; give the path of a .ckpt file")
    try:
        return _load(file)
    except ValueError as error:
        raise ConfigError(f"{key}={path} is {error}") from None


def why_not_resumable(file: Path) -> str | None:
    """None when a run can resume from ``file``, else why not (unreadable, foreign, weights only)."""
    try:
        checkpoint = _load(file)
    except ValueError as error:
        return str(error)
    if "optimizer_states" not in checkpoint:  # ModelCheckpoint(save_weights_only=True) saved it
        return "weights only, without the optimizer and loop state a run resumes from"
    return None


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
