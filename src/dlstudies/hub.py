"""Hugging Face checkpoints named ``hf:<hub name or local folder>``: config.json, safetensors
weights and tokenizer.json, from a local folder or downloaded from the hub (where it is reachable)
into the Hugging Face cache; and how a run's config takes a GPT-2-family checkpoint's sizes and
tokenizer (``model.pretrained``)."""

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, open_dict

from dlstudies.config.errors import ConfigError
from dlstudies.models.gpt2 import gpt2_options

PREFIX = "hf:"
FILES = ["config.json", "*.safetensors", "tokenizer.json"]  # what a download fetches


@dataclass(frozen=True)
class HFCheckpoint:
    """A checked Hugging Face model folder; ``where`` names it as the user did, for error lines."""

    folder: Path
    where: str

    @property
    def config(self) -> dict:
        return json.loads((self.folder / "config.json").read_text())

    @property
    def tokenizer(self) -> Path:
        return self.folder / "tokenizer.json"

    def weights(self) -> dict[str, torch.Tensor]:
        """Every tensor of the safetensors files (one, or the shards of a large model)."""
        from safetensors.torch import load_file

        return {name: tensor for file in sorted(self.folder.glob("*.safetensors"))
                for name, tensor in load_file(file).items()}


def is_hf(spec: str | None) -> bool:
    """Whether a ``ckpt_path`` or ``model.pretrained`` value names a Hugging Face checkpoint."""
    return isinstance(spec, str) and spec.startswith(PREFIX)


def hf_checkpoint(spec: str, key: str) -> HFCheckpoint:
    """The checkpoint ``hf:<name or folder>`` names (``key`` names the setting in error lines): a
    local folder as it is, else a hub name downloaded; one line when it cannot be had or lacks a
    file."""
    name, where = spec.removeprefix(PREFIX), f"{key}={spec}"
    folder = Path(name).expanduser()
    if not folder.is_dir():
        folder = _download(name, where)
    missing = [f for f in FILES if not any(folder.glob(f))]
    if missing:
        legacy = " (pytorch_model.bin is not read: unpickling it could run code)" if (
            folder / "pytorch_model.bin").is_file() else ""
        raise ConfigError(f"{where} has no {', '.join(missing)} in {folder}{legacy}; a checkpoint "
                          "folder holds config.json, model.safetensors and tokenizer.json")
    return HFCheckpoint(folder, where)


def _download(name: str, where: str) -> Path:
    """The hub repository ``name`` in the Hugging Face cache, fetched the first time."""
    from huggingface_hub import snapshot_download  # imported here: only downloads need it

    try:
        return Path(snapshot_download(name, allow_patterns=FILES))
    except Exception as error:  # offline, no such repository, hub down: all end the run here
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(f"{where} is no local folder and could not be downloaded from the Hugging Face "
                          f"hub ({reason}); give a folder with config.json, model.safetensors and "
                          "tokenizer.json") from None


def use_pretrained(cfg: DictConfig) -> None:
    """Make the run's net the GPT-2-family checkpoint ``model.pretrained`` names (its sizes, from
    its config.json) and its data that checkpoint's tokenizer; the task loads the weights."""
    spec = cfg.model.get("pretrained")
    if not is_hf(spec):
        return
    checkpoint = hf_checkpoint(spec, "model.pretrained")
    options = gpt2_options(checkpoint.config, checkpoint.where)
    if "tokenizer" not in cfg.data:
        raise ConfigError(f"{checkpoint.where} needs a text corpus (data=shakespeare, chars, words or names)")
    if cfg.data.tokenizer not in (None, str(checkpoint.tokenizer)):
        raise ConfigError(f"data.tokenizer={cfg.data.tokenizer} is not allowed with {checkpoint.where}: "
                          "the checkpoint brings its own; leave data.tokenizer unset")
    if cfg.model.net.get("norm") is not None or cfg.model.net.get("activation") is not None:
        raise ConfigError(f"{checkpoint.where} fixes the norm and activation (LayerNorm, GELU); leave norm "
                          "and activation unset")
    if cfg.data.block_size > options["block_size"]:
        raise ConfigError(f"data.block_size={cfg.data.block_size} is not allowed; {checkpoint.where} "
                          f"reads at most {options['block_size']} positions")
    with open_dict(cfg):
        cfg.data.tokenizer = str(checkpoint.tokenizer)
        cfg.model.net.update(options)
