"""dlstudies: Lightning + Hydra experiments for deep-learning fundamentals."""

from pathlib import Path

# Configs live at the repository root (conf/; sweeps/ through the conf/sweep link).
ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf"
