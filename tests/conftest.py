"""Shared helpers: compose configs in-process, run the real commands in subprocesses."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from dlstudies import CONF_DIR, ROOT
from dlstudies.config.resolvers import register_resolvers

# Few-second runs: a small slice of the names corpus, a few steps, no W&B.
TINY = ["trainer.max_steps=30", "trainer.val_check_interval=10", "logger=csv", "samples=3",
        "trainer.enable_progress_bar=false"]


def make_cfg(overrides: list[str], tmp_path: Path, config_name: str = "train") -> DictConfig:
    """Compose ``config_name`` as ``python train.py <overrides>`` would, writing under tmp_path."""
    register_resolvers()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name, overrides=[f"paths.log_dir={tmp_path}", *overrides],
                      return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
        del cfg["hydra"]
    return cfg


def run_command(args: list[str], tmp_path: Path, module: str | None = None,
                env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python train.py <args>`` (or ``python -m <module>``) from the repository root."""
    command = [sys.executable, "-m", module] if module else [sys.executable, str(ROOT / "train.py")]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0", **(env or {})}
    if module is None:
        args = [a for a in args if a.startswith("-")] + [a for a in args if not a.startswith("-")] + [f"paths.log_dir={tmp_path}"]
    return subprocess.run(command + args, cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def names_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 600-name corpus file, like names.txt but small."""
    from dlstudies.data.names import load_names

    path = tmp_path_factory.mktemp("corpus") / "names.txt"
    path.write_text("\n".join(load_names(600)) + "\n")
    return path
