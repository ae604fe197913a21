"""Generate text from a language-model checkpoint: ``python -m dlstudies.sample ckpt_path=...``."""

import sys

import hydra
import torch
from omegaconf import DictConfig
from rich.console import Console

from dlstudies import CONF_DIR
from dlstudies.checkpoint import load_module
from dlstudies.config.errors import ConfigError
from dlstudies.config.resolvers import register_resolvers


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="sample")
def _main(cfg: DictConfig) -> None:
    try:
        module, _ = load_module(cfg.ckpt_path)
        if not hasattr(module, "sample"):
            raise ConfigError(f"ckpt_path={cfg.ckpt_path} holds a classifier; sampling needs a language model")
        if cfg.temperature < 0 or cfg.n < 1:
            raise ConfigError(f"temperature={cfg.temperature}, n={cfg.n} are not allowed; "
                              "use temperature >= 0 and n >= 1")
        texts = module.sample(cfg.n, prompt=cfg.prompt, max_new_tokens=cfg.max_new_tokens,
                              temperature=cfg.temperature, top_k=cfg.top_k, seed=cfg.seed)
    except (ConfigError, ValueError) as error:
        Console(stderr=True).print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        sys.exit(2)
    for text in texts:
        print(text)


def main() -> None:
    """Console entry point."""
    register_resolvers()
    torch.set_grad_enabled(False)
    _main()


if __name__ == "__main__":
    main()
