"""Values checked before anything is built or trained, each failing in one line."""

from numbers import Integral, Real
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from dlstudies.config.argv import group_options, option_target
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


def _choice(group: str, cfg: DictConfig) -> str:
    """The option of ``group`` the run chose (its class name when composed without Hydra)."""
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    return choices.get(group) or cfg[group]._target_.rsplit(".", 1)[-1]


def data_kind(option: str) -> str | None:
    """What one item of the data option is: its data module's ``kind``."""
    target = option_target("data", option)
    return getattr(get_class(target), "kind", None) if target else None


def check_model_reads_data(cfg: DictConfig) -> None:
    """A model option given data its task cannot read (a task's ``reads`` against the data
    module's ``kind``) stops in one line that names the data options it reads."""
    if "_target_" not in cfg.get("model", {}) or "_target_" not in cfg.get("data", {}):
        return
    reads, kind = get_class(cfg.model._target_).reads, get_class(cfg.data._target_).kind
    if kind in reads:
        return
    fits = [option for option in group_options("data") if data_kind(option) in reads]
    raise ConfigError(f"model={_choice('model', cfg)} cannot read data={_choice('data', cfg)} ({kind}); "
                      f"it reads {' or '.join(reads)}: data={', '.join(fits)}")


def validate(cfg: DictConfig) -> None:
    """Check the values a user is most likely to get wrong, before anything is built or trained."""
    check_model_reads_data(cfg)
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
