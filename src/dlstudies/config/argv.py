"""Command-line checks that run before Hydra composes: a group option that does not exist."""

import re

from dlstudies import CONF_DIR
from dlstudies.config.errors import ConfigError

STUDY_SCALES = ("default", "smoke")  # sizes every sweeps/*.yaml defines under study.sizes


def group_options(group: str) -> list[str]:
    """The options of a config group: the YAML files of conf/<group>/. Files named ``_*.yaml``
    are parts that several options include (shared defaults), not options themselves."""
    folder = CONF_DIR / group  # conf/sweep links to sweeps/, so studies are a group like any other
    return sorted(p.stem for p in folder.glob("*.yaml") if not p.stem.startswith("_"))


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
