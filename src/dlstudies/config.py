"""Config checks that run before any training, and the resolvers the YAML files use.

Hydra composes and OmegaConf interpolates; what neither does is say, in one line, that a value
is out of range or that a group has no such option. That is all this module adds.
"""

import hashlib
import json
import netrc
import os
import re
from numbers import Integral, Real
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from dlstudies import CONF_DIR, ROOT


STUDY_SCALES = ("default", "smoke")  # sizes every sweeps/*.yaml defines under study.sizes


class ConfigError(ValueError):
    """A bad user-supplied value; its message is the one line the user sees."""


def wandb_offline() -> bool:
    """Offline unless the user is logged in (API key or netrc entry); WANDB_MODE wins if set."""
    if os.environ.get("WANDB_MODE") or os.environ.get("WANDB_API_KEY"):
        return False
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is None
    except (FileNotFoundError, netrc.NetrcParseError):
        return True


def job_name() -> str | None:
    """The job's overrides as a name (``model=mlp,norm=layernorm``); None for a plain run."""
    return HydraConfig.get().job.override_dirname or None if HydraConfig.initialized() else None


def sweep_group() -> str | None:
    """One W&B group per multirun: the sweep folder; single runs have no group."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir).name


def _slug(text: str, limit: int) -> str:
    """A folder-safe name for ``text``: readable up to ``limit`` characters, then a short hash."""
    safe = re.sub(r"[^\w=,.+-]+", "_", text).strip("_")
    if len(safe) <= limit:
        return safe
    return f"{safe[:limit]}~{hashlib.sha1(text.encode()).hexdigest()[:8]}"


# Overrides that say how or where a sweep runs, not what it computes: re-running a sweep with a
# different launcher, job count or resume flag continues the same sweep folder.
_NOT_THE_SWEEP = re.compile(r"^[+~]*(hydra[./]|resume=|paths\.log_dir=)")


def sweep_name(overrides: list[str]) -> str:
    """The multirun folder name: the command's own overrides (sorted), so re-running the same
    command finds its folder and resumes, while different sweeps never share one.
    """
    # Hydra resolves hydra.sweep.dir first in the sweeper, with the command's overrides, then again
    # in every job with that job's own overrides. Pin the first answer for this process and the
    # launcher's workers (they inherit the environment) so all jobs land in one sweep folder.
    if "DLS_SWEEP_NAME" not in os.environ:
        kept = sorted(o for o in overrides if not _NOT_THE_SWEEP.match(o))
        os.environ["DLS_SWEEP_NAME"] = _slug(" ".join(kept), 80) if kept else "default"
        os.environ["DLS_SWEEP_OVERRIDES"] = json.dumps(list(overrides))
    return os.environ["DLS_SWEEP_NAME"]


def job_dirname(num: int, overrides: list[str]) -> str:
    """A job's folder inside a sweep: its number and what sets it apart from the command's
    common overrides (``3_model=mlp,norm=layernorm``), hashed when very long.
    """
    common = {o.lower() for o in json.loads(os.environ.get("DLS_SWEEP_OVERRIDES", "[]"))}
    own = ",".join(o for o in overrides if o.lower() not in common and not _NOT_THE_SWEEP.match(o))
    return _slug(f"{num}_{own}" if own else str(num), 120)


def register_resolvers() -> None:
    """Make ``${dls.*:}`` interpolations available to every config (idempotent)."""
    for name, fn in {"dls.root": lambda: str(ROOT), "dls.wandb_offline": wandb_offline,
                     "dls.job_name": job_name, "dls.sweep_group": sweep_group,
                     "dls.ratio": lambda a, b: max(1, round(float(a) / float(b))),
                     "dls.sweep_name": sweep_name, "dls.job_dirname": job_dirname}.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def group_options(group: str) -> list[str]:
    """The options of a config group: the YAML files of conf/<group>/."""
    folder = CONF_DIR / group  # conf/sweep links to sweeps/, so studies are a group like any other
    return sorted(p.stem for p in folder.glob("*.yaml"))


def check_choices(argv: list[str]) -> None:
    """Reject ``group=option`` overrides naming an option that does not exist, in one line."""
    for arg in argv:
        scale = re.fullmatch(r"\+*study\.scale=(.*)", arg)
        if scale and scale[1] not in STUDY_SCALES:
            raise ConfigError(f"study.scale={scale[1]} is not an option; allowed: {', '.join(STUDY_SCALES)}")
        match = re.fullmatch(r"[+~]*([\w/]+)=(.*)", arg)
        if not match or match[1].startswith("hydra"):
            continue
        group, value = match[1], match[2]
        if not (CONF_DIR / group).is_dir():
            continue
        allowed = group_options(group)
        for option in re.split(r"\s*,\s*", value.strip("[]")):
            if option and option != "null" and "(" not in option and option not in allowed:
                raise ConfigError(f"{group}={option} is not an option; allowed: {', '.join(allowed)}")


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
    _check(cfg, "model.net.context", Integral, 1, "an integer >= 1")
    _check(cfg, "model.net.depth", Integral, 1, "an integer >= 1")
    _check(cfg, "model.net.width", Integral, 1, "an integer >= 1")
    _check(cfg, "regularizer.l2", Real, 0, "a number >= 0")
    _check(cfg, "regularizer.dropout", Real, 0, "a number in [0, 1)")
    _check(cfg, "seed", Integral, 0, "an integer >= 0")
    _check(cfg, "threads", Integral, 1, "an integer >= 1 (or null)")
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
