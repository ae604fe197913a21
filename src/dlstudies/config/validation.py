"""Values checked before anything is built or trained, each failing in one line."""

from numbers import Integral, Real
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dlstudies.config.errors import ConfigError


def _get(cfg: DictConfig, key: str):
    return OmegaConf.select(cfg, key, default=None, throw_on_missing=False)


def _check(cfg: DictConfig, key: str, kind: type, low: float, allowed: str, strict: bool = False) -> None:
    value = _get(cfg, key)
    if value is None:
        return
    ok = isinstance(value, kind) and not isinstance(value, bool) and (value > low if strict else value >= low)
    if not ok:
        raise ConfigError(f"{key}={value!r} is not allowed; it must be {allowed}")


def validate(cfg: DictConfig) -> None:
    """Check the values a user is most likely to get wrong, before anything is built or trained."""
    if "data" in cfg and OmegaConf.is_missing(cfg.data, "path"):
        choice = HydraConfig.get().runtime.choices.get("data") if HydraConfig.initialized() else "this"
        raise ConfigError(f"data.path is missing; data={choice} needs data.path=/path/to/file")
    _check(cfg, "optimizer.lr", Real, 0, "a number > 0", strict=True)
    _check(cfg, "data.batch_size", Integral, 1, "an integer >= 1")
    _check(cfg, "data.eval_batch_size", Integral, 1, "an integer >= 1")
    _check(cfg, "data.block_size", Integral, 1, "an integer >= 1")
    _check(cfg, "regularizer.l2", Real, 0, "a number >= 0")
    _check(cfg, "regularizer.dropout", Real, 0, "a number in [0, 1)")
    _check(cfg, "seed", Integral, 0, "an integer >= 0")
    _check(cfg, "threads", Integral, 1, "an integer >= 1 (or null)")
    _check(cfg, "jobs_per_gpu", Integral, 1, "an integer >= 1")
    _check(cfg, "regularizer.ensemble", Integral, 1, "an integer >= 1")
    dropout = _get(cfg, "regularizer.dropout")
    if isinstance(dropout, Real) and dropout >= 1:
        raise ConfigError(f"regularizer.dropout={dropout} is not allowed; it must be in [0, 1)")
    steps = _get(cfg, "trainer.max_steps")
    if steps is not None and (not isinstance(steps, Integral) or (steps < 1 and steps != -1)):
        raise ConfigError(f"trainer.max_steps={steps!r} is not allowed; it must be an integer >= 1 (or -1)")
    ckpt = _get(cfg, "ckpt_path")
    if ckpt is not None and not Path(ckpt).is_file():
        raise ConfigError(f"ckpt_path={ckpt} does not exist; give the path of a .ckpt file")
