"""Evaluate a checkpoint on its run's test split: ``python -m dlstudies.evaluate ckpt_path=...``."""

import logging
import sys

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console

from dlstudies import CONF_DIR
from dlstudies.checkpoint import load_module
from dlstudies.config.errors import ConfigError, print_error
from dlstudies.config.resolvers import register_resolvers


def evaluate(ckpt_path: str, split: str = "test", accelerator: str = "auto") -> dict[str, float]:
    """Metrics of the checkpoint on ``split`` (test or val) of the data it was trained on."""
    if split not in ("test", "val"):
        raise ConfigError(f"split={split} is not allowed; use test or val")
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no accelerator chatter
    module, config = load_module(ckpt_path)
    datamodule = instantiate(config.data)
    datamodule.setup("test")
    stored = module.vocab if hasattr(module, "vocab") else None
    if stored is not None and stored != datamodule.model_kwargs().get("vocab"):
        raise ConfigError(f"the data of ckpt_path={ckpt_path} no longer gives the vocabulary it was "
                          "trained with; point data.path at the original corpus")
    trainer = L.Trainer(accelerator=accelerator, devices=1, logger=False, enable_checkpointing=False,
                        enable_model_summary=False, enable_progress_bar=False)
    run = trainer.test if split == "test" else trainer.validate
    results = run(module, datamodule=datamodule, verbose=False)[0]
    return {k: float(v) for k, v in results.items()}


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
def _main(cfg: DictConfig) -> None:
    try:
        metrics = evaluate(cfg.ckpt_path, cfg.split, cfg.accelerator)
    except ConfigError as error:
        print_error(error)
        sys.exit(2)
    Console().print("  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))


def main() -> None:
    """Console entry point."""
    register_resolvers()
    _main()


if __name__ == "__main__":
    main()
