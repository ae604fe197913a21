"""dlstudies: Lightning + Hydra experiments for deep-learning fundamentals."""

from pathlib import Path

# Configs live at the repository root (conf/, sweeps/) so that a clone reads like a template.
ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf"
SWEEPS_DIR = ROOT / "sweeps"
