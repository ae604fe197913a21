"""Refactoring the YAML files changes no experiment or study: every resolved config equals its
golden copy in ``tests/golden/resolved_configs.json``.

The golden file holds, for the default run, every experiment and every study at both scales,
the job config as ``python train.py --cfg job`` resolves it, plus the sweep's parameters and
launcher. A deliberate change to a recipe regenerates it:
``DLS_UPDATE_GOLDEN=1 pytest tests/test_resolved_configs.py`` (and the diff goes in the commit).
"""

import json
import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

from dlstudies import CONF_DIR, ROOT
from dlstudies.config.argv import group_options
from dlstudies.config.resolvers import register_resolvers

GOLDEN = Path(__file__).parent / "golden" / "resolved_configs.json"
CASES = {"default": []}
CASES |= {f"experiment={e}": [f"experiment={e}"] for e in group_options("experiment")}
CASES |= {f"sweep={s},scale={scale}": [f"+sweep={s}", f"study.scale={scale}"]
          for s in group_options("sweep") for scale in ("default", "smoke")}


def resolved(overrides: list[str], tmp_path: Path) -> dict:
    """The job config (and, for studies, the sweep's parameters and launcher), resolved, with the
    machine-specific folders replaced by placeholders."""
    register_resolvers()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.log_dir={tmp_path}", *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    hydra = cfg.hydra
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
        del cfg["hydra"]
    record = {"job": OmegaConf.to_container(cfg, resolve=True)}
    if "wandb" in record["job"]["logger"]:  # depends on the machine's W&B login, not on the YAML
        record["job"]["logger"]["wandb"]["offline"] = "<machine>"
    if OmegaConf.to_container(cfg.trainer)["precision"] == "${dls.cpu_precision:}":  # on the machine's CPU
        record["job"]["trainer"]["precision"] = "<machine>"
    if "sweep" in "".join(overrides):
        record["sweeper_params"] = OmegaConf.to_container(hydra.sweeper.params, resolve=True)
        record["launcher"] = OmegaConf.to_container(hydra.launcher, resolve=True)
    text = json.dumps(record, sort_keys=True).replace(str(tmp_path), "<tmp>").replace(str(ROOT), "<root>")
    return json.loads(text)


def test_every_experiment_and_study_resolves_as_its_golden_copy(tmp_path: Path) -> None:
    current = {name: resolved(overrides, tmp_path) for name, overrides in CASES.items()}
    if os.environ.get("DLS_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert sorted(current) == sorted(golden), "add new experiments/studies with DLS_UPDATE_GOLDEN=1"
    for name in CASES:
        assert current[name] == golden[name], name
