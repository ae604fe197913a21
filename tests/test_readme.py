"""The README's "Composing a run" tables say what conf/ holds: every option of every config group,
and each model option's optimizer and schedule as its defaults list chooses them."""

import re
from pathlib import Path

from conftest import make_cfg
from dlstudies import CONF_DIR, ROOT
from dlstudies.config.argv import group_options

NOT_CHOICES = {"hydra"}  # Hydra's own settings, not a choice of the run


def section_tables(title: str) -> list[list[list[str]]]:
    """The tables of the README section ``## <title>``: rows of cells, header and rule dropped."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    tables, rows = [], []
    for line in section.splitlines() + [""]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
        elif rows:
            tables.append(rows[2:])
            rows = []
    return tables


def names(cell: str) -> list[str]:
    """The `backticked` option names of a cell, in order, without what the parentheses explain."""
    return re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", cell))


def test_the_group_table_lists_every_option_of_every_group() -> None:
    groups = section_tables("Composing a run")[0]
    listed = {names(row[0])[0]: names(row[1]) for row in groups}
    expected = {p.name: group_options(p.name) for p in CONF_DIR.iterdir() if p.is_dir() and p.name not in NOT_CHOICES}
    assert sorted(listed) == sorted(expected), "one row per config group"
    for group, options in expected.items():
        assert sorted(listed[group]) == options, f"the README's {group} row"


def test_the_defaults_table_gives_each_model_options_optimizer_and_schedule(tmp_path: Path) -> None:
    defaults = section_tables("Composing a run")[1]
    rows = {model: row for row in defaults for model in names(row[0])}
    assert sorted(rows) == group_options("model"), "each model option in one row of the defaults table"
    for model, (_, optimizer, lr, weight_decay, schedule) in rows.items():
        cfg = make_cfg([f"model={model}"], tmp_path)
        assert cfg.optimizer._target_ == f"torch.optim.{optimizer}", model
        assert (cfg.optimizer.lr, cfg.optimizer.weight_decay) == (float(lr), float(weight_decay)), model
        warmup = re.fullmatch(r"cosine, (\d+) warm-up steps", schedule)
        assert warmup and cfg.scheduler.warmup_steps == int(warmup[1]), model
        assert cfg.scheduler._target_.endswith("cosine_with_warmup"), model

