"""dlstudies: Lightning + Hydra experiments for deep-learning fundamentals."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# The configs (and, through conf/sweep, the studies): in a checkout src/dlstudies/conf links to the
# top-level conf/; an installed wheel holds a copy of them there.
CONF_DIR = PACKAGE_DIR / "conf"
# A checkout (an editable install) keeps outputs/ and data/ at the repository root; an installed
# package writes them under the directory it runs in, as any command-line tool does.
_SOURCE = PACKAGE_DIR.parents[1]
CHECKOUT = _SOURCE if PACKAGE_DIR.parent.name == "src" and (_SOURCE / "pyproject.toml").is_file() else None
ROOT = CHECKOUT or Path.cwd()
