"""Command-line checks that run before Hydra composes: a group option or a study scale that does
not exist."""

import re

from omegaconf import OmegaConf

from dlstudies import CONF_DIR
from dlstudies.config.errors import ConfigError


def group_options(group: str) -> list[str]:
    """The options of a config group: the YAML files of conf/<group>/. Files named ``_*.yaml``
    are parts that several options include (shared defaults), not options themselves."""
    folder = CONF_DIR / group  # conf/sweep links to sweeps/, so studies are a group like any other
    return sorted(p.stem for p in folder.glob("*.yaml") if not p.stem.startswith("_"))


def sweep_scales(sweep: str) -> list[str]:
    """The scales a study defines: the keys of ``study.sizes`` in ``sweeps/<sweep>.yaml``."""
    return sorted(OmegaConf.load(CONF_DIR / "sweep" / f"{sweep}.yaml").study.sizes)


def check_choices(argv: list[str]) -> None:
    """Reject ``group=option`` overrides naming an option that does not exist, in one line."""
    for arg in argv:
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
    check_scale(argv)


def check_scale(argv: list[str]) -> None:
    """Reject a ``study.scale`` that the ``+sweep`` named beside it does not define, in one line."""
    values = dict(a.lstrip("+").split("=", 1) for a in argv if re.match(r"\+*(sweep|study\.scale)=", a))
    if "sweep" not in values or "study.scale" not in values:
        return
    for sweep in filter(None, re.split(r"\s*,\s*", values["sweep"].strip("[]"))):
        allowed = sweep_scales(sweep)
        if values["study.scale"] not in allowed:
            raise ConfigError(f"study.scale={values['study.scale']} is not an option of sweep={sweep}; "
                              f"allowed: {', '.join(allowed)}")
