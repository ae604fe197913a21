"""The middle of ``python train.py --help``, read from the config files themselves: every config
group with its options, and the experiments, studies and debug modes each with the first sentence
of its header comment. conf/hydra/help/dlstudies.yaml puts it between the introduction and the
examples."""

import re
import textwrap
from pathlib import Path

from dlstudies import CONF_DIR
from dlstudies.config.argv import group_options

# Groups listed with a line per option (a recipe is known by what it does), and the command that uses them.
DESCRIBED = {"experiment": "Experiments, documented recipes (experiment=<name>)",
             "sweep": "Studies (python train.py -m +sweep=<name>, then python -m dlstudies.report "
                      "<the sweep folder>)",
             "debug": "Debug modes (debug=<mode>): no loggers, run folders in outputs/debug/"}
NOT_CHOICES = {"hydra"}  # Hydra's own settings, not a choice of the run


def description(path: Path, width: int) -> str:
    """The first sentence of the file's header comment (the lines after ``# @package`` up to a
    blank line or a command), cut to ``width`` characters."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.lstrip("#").strip()
        if not line.startswith("#") or not text or text.startswith("python "):
            break
        if not text.startswith("@package"):
            lines.append(text)
    text = re.split(r":?\s*python ", " ".join(lines))[0]  # the command that runs it is in the help already
    sentence = re.split(r"(?<=[.!?])\s+(?=[A-Z])", text)[0].rstrip(":")
    return textwrap.shorten(sentence, width, placeholder=" ...")


def help_text() -> str:
    """The groups and their options, then the described groups with one line per option."""
    groups = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name not in NOT_CHOICES)
    width = max(len(g) for g in groups) + 2
    lines = ["Config groups (group=option):"]
    lines += [f"  {g:{width}}{', '.join(group_options(g))}" for g in groups if g not in DESCRIBED]
    for group, title in DESCRIBED.items():
        names = group_options(group)
        width = max(map(len, names)) + 2
        lines += ["", f"{title}:"]
        lines += [f"  {n:{width}}{description(CONF_DIR / group / f'{n}.yaml', 100 - width)}" for n in names]
    return "\n".join(lines).replace("$", "$$")  # Hydra fills the template with string.Template
