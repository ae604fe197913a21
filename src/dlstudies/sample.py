"""Sample from a generative model's checkpoint: ``python -m dlstudies.sample ckpt_path=... n=64``.

Texts (language models) are printed; image and point samples are drawn into one picture, written
to ``out=`` or to ``samples_<checkpoint name>.png`` in the checkpoint's run folder. Every other key
of conf/sample.yaml that is set (null: the task's default) is an option of the task's ``sample``
(``prompt``, ``temperature``, ...; ``+name=value`` passes one the file does not list).
"""

import inspect
import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from dlstudies import CONF_DIR
from dlstudies.checkpoint import load_module
from dlstudies.config.errors import ConfigError
from dlstudies.config.resolvers import register_resolvers
from dlstudies.generation.figures import kind, sample_title, save_samples
from dlstudies.summary import read_summary

OWN_KEYS = ("ckpt_path", "n", "seed", "out", "paths")  # the command's own; the rest go to sample()


def run_folder(ckpt_path: str | Path) -> Path:
    """The run folder a checkpoint belongs to (``<run>/checkpoints/<name>.ckpt``), else its folder."""
    folder = Path(ckpt_path).expanduser().resolve().parent
    return folder.parent if folder.name == "checkpoints" else folder


def check_options(module: torch.nn.Module, options: dict) -> None:
    """One line for an option the task's ``sample`` does not take (a misspelt one, or a language
    model's ``temperature`` given to an image model)."""
    parameters = inspect.signature(module.sample).parameters
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        return
    allowed = [name for name in parameters if name not in ("n", "seed")]
    for name, value in options.items():
        if name not in allowed:
            raise ConfigError(f"{name}={value} is not an option of {type(module).__name__} sampling; "
                              f"allowed: {', '.join(allowed) or 'none'}")


def sample(ckpt_path: str, n: int, seed: int | None = None, out: str | None = None,
           **options) -> list[str] | Path:
    """The checkpoint's ``n`` samples: its texts, or the path of the picture of its image or
    point samples; texts go to ``out`` too, one per line, when it is given."""
    module, _ = load_module(ckpt_path)
    if not hasattr(module, "sample"):
        raise ConfigError(f"ckpt_path={ckpt_path} holds a {type(module).__name__}, which does not sample; "
                          "give the checkpoint of a generative model")
    if n < 1:
        raise ConfigError(f"n={n} is not allowed; it must be an integer >= 1")
    check_options(module, options)
    samples = module.sample(n, seed=seed, **options)
    if kind(samples) == "texts":
        if out:
            Path(out).expanduser().write_text("".join(f"{text}\n" for text in samples), encoding="utf-8")
        return samples
    folder = run_folder(ckpt_path)
    choices = (read_summary(folder) or {}).get("choices", {})
    path = Path(out).expanduser() if out else folder / f"samples_{Path(ckpt_path).stem}.png"
    return save_samples(samples, path, sample_title(choices, n, seed, fallback=type(module).__name__))


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="sample")
def _main(cfg: DictConfig) -> None:
    settings = OmegaConf.to_container(cfg, resolve=True)
    options = {k: v for k, v in settings.items() if k not in OWN_KEYS and v is not None}
    try:
        samples = sample(cfg.ckpt_path, cfg.n, cfg.seed, cfg.out, **options)
    except (ConfigError, ValueError) as error:
        Console(stderr=True).print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        sys.exit(2)
    if isinstance(samples, Path) or cfg.out:
        print(f"wrote {cfg.n} samples to {samples if isinstance(samples, Path) else cfg.out}")
    else:
        for text in samples:
            print(text)


def main() -> None:
    """Console entry point."""
    register_resolvers()
    torch.set_grad_enabled(False)
    _main()


if __name__ == "__main__":
    main()
