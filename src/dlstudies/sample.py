"""Sample from a generative model's checkpoint: ``python -m dlstudies.sample ckpt_path=... n=64``.

Texts (language models) are printed, and how many tokens per second were generated;
``ckpt_path=hf:<hub name or folder>`` samples a GPT-2-family checkpoint (config.json, safetensors,
tokenizer.json) in our GPT. Image and point samples are drawn into one picture, written
to ``out=`` or to ``samples_<checkpoint name>.png`` in the checkpoint's run folder. Every other key
of conf/sample.yaml that is set (null: the task's default) is an option of the task's ``sample``
(``prompt``, ``temperature``, ...; ``+name=value`` passes one the file does not list). A task whose
``sample`` takes ``data`` is given a function that builds the run's data (set up for testing), for
options that start from real examples (a VAE's interpolation between two test images).
"""

import inspect
import sys
import time
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from dlstudies import CONF_DIR
from dlstudies.checkpoint import load_module
from dlstudies.config.errors import ConfigError, print_error
from dlstudies.config.resolvers import register_resolvers
from dlstudies.generation.figures import kind, sample_title, save_samples
from dlstudies.hub import is_hf
from dlstudies.summary import read_summary
from dlstudies.tasks.language_model import LanguageModel
from dlstudies.tasks.seq2seq import Seq2Seq

OWN_KEYS = ("ckpt_path", "n", "seed", "out", "paths")  # the command's own; the rest go to sample()
GIVEN = ("n", "seed", "data")  # what the command passes itself


def run_folder(ckpt_path: str | Path) -> Path:
    """The run folder a checkpoint belongs to (``<run>/checkpoints/<name>.ckpt``), else its folder."""
    folder = Path(ckpt_path).expanduser().resolve().parent
    return folder.parent if folder.name == "checkpoints" else folder


def test_data(config: DictConfig) -> L.LightningDataModule:
    """The run's data module (from its config in the checkpoint), set up for testing."""
    datamodule = instantiate(config.data)
    datamodule.setup("test")
    return datamodule


def check_options(module: torch.nn.Module, options: dict) -> None:
    """One line for an option the task's ``sample`` does not take (a misspelt one, or a language
    model's ``temperature`` given to an image model)."""
    parameters = inspect.signature(module.sample).parameters
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        return
    allowed = [name for name in parameters if name not in GIVEN]
    for name, value in options.items():
        if name not in allowed:
            raise ConfigError(f"{name}={value} is not an option of {type(module).__name__} sampling; "
                              f"allowed: {', '.join(allowed) or 'none'}")


def sample(ckpt_path: str, n: int, seed: int | None = None, out: str | None = None,
           **options) -> list[str] | Path:
    """The checkpoint's ``n`` samples: its texts, or the path of the picture of its image or
    point samples; texts go to ``out`` too, one per line, when it is given."""
    module, config = (LanguageModel.from_pretrained(ckpt_path), None) if is_hf(ckpt_path) else load_module(ckpt_path)
    if not hasattr(module, "sample"):
        raise ConfigError(f"ckpt_path={ckpt_path} holds a {type(module).__name__}, which does not sample; "
                          "give the checkpoint of a generative model")
    if isinstance(module, Seq2Seq):  # its samples are its last evaluation's; from a checkpoint it has none
        raise ConfigError(f"ckpt_path={ckpt_path} holds a translation model; translate text with: "
                          f"python -m dlstudies.translate ckpt_path={ckpt_path} text=\"...\"")
    if n < 1:
        raise ConfigError(f"n={n} is not allowed; it must be an integer >= 1")
    check_options(module, options)
    title = sample_title((read_summary(run_folder(ckpt_path)) or {}).get("choices", {}), n, seed,
                         fallback=type(module).__name__)
    title += "".join(f", {name}={value}" for name, value in options.items())  # what else shaped them
    if "data" in inspect.signature(module.sample).parameters:
        options["data"] = lambda: test_data(config)
    started = time.perf_counter()
    samples = module.sample(n, seed=seed, **options)
    seconds = time.perf_counter() - started
    if kind(samples) == "texts":
        if getattr(module, "sampled_tokens", None):
            Console(stderr=True).print(f"{module.sampled_tokens} tokens in {seconds:.2f} s: "
                                       f"{module.sampled_tokens / seconds:.1f} tokens/s on "
                                       f"{torch.get_num_threads()} threads", highlight=False)
        if out:
            Path(out).expanduser().write_text("".join(f"{text}\n" for text in samples), encoding="utf-8")
        return samples
    path = Path(out).expanduser() if out else run_folder(ckpt_path) / f"samples_{Path(ckpt_path).stem}.png"
    return save_samples(samples, path, title)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="sample")
def _main(cfg: DictConfig) -> None:
    settings = OmegaConf.to_container(cfg, resolve=True)
    options = {k: v for k, v in settings.items() if k not in OWN_KEYS and v is not None}
    try:
        samples = sample(cfg.ckpt_path, cfg.n, cfg.seed, cfg.out, **options)
    except (ConfigError, ValueError) as error:
        print_error(error)
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
