"""Command-line checks that run before Hydra composes: a group option, a study scale or a Trainer
argument that does not exist."""

import difflib
import inspect
import re

import lightning
from omegaconf import OmegaConf

from dlstudies import CONF_DIR
from dlstudies.config.errors import ConfigError


def group_options(group: str) -> list[str]:
    """The options of a config group: the YAML files of conf/<group>/. Files named ``_*.yaml``
    are parts that several options include (shared defaults), not options themselves."""
    folder = CONF_DIR / group  # conf/sweep links to sweeps/, so studies are a group like any other
    return sorted(p.stem for p in folder.glob("*.yaml") if not p.stem.startswith("_"))


def option_target(group: str, option: str) -> str | None:
    """The ``_target_`` that a group option instantiates: its own, else that of the last option of
    the same group in its defaults list that has one (``fashion_mnist`` extends ``mnist``)."""
    cfg = OmegaConf.load(CONF_DIR / group / f"{option}.yaml")
    if "_target_" in cfg:
        return cfg._target_
    parents = [p for p in cfg.get("defaults", []) if isinstance(p, str) and p != "_self_"]
    return next(filter(None, (option_target(group, p) for p in reversed(parents))), None)


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
    check_trainer_arguments(argv)


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


def check_trainer_arguments(argv: list[str]) -> None:
    """Reject ``trainer.<name>=`` naming no ``lightning.Trainer`` argument, in one line that suggests
    the nearest one (conf/trainer/default.yaml lists them all, so each is set without ``+``)."""
    from_groups = ("logger", "callbacks")  # the Trainer gets these from the groups of those names
    arguments = [a for a in inspect.signature(lightning.Trainer).parameters if a not in from_groups]
    for arg in argv:
        match = re.match(r"[+~]*trainer\.(\w+)", arg)
        if not match:
            continue
        name = match[1]
        if name in from_groups:
            raise ConfigError(f"trainer.{name} is set by the {name} group; choose {name}=<option> instead")
        if name not in arguments:
            close = difflib.get_close_matches(name, arguments, n=1)
            hint = f"did you mean trainer.{close[0]}?" if close else f"the arguments are {', '.join(arguments)}"
            raise ConfigError(f"trainer.{name} is not a lightning.Trainer argument; {hint}")
