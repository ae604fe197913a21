"""``summary.json``: the machine-readable record of one run, read by the sweep report and resume."""

import json
import math
from pathlib import Path

SUMMARY = "summary.json"


def _plain(value):
    """Numbers as floats (NaN/inf as strings JSON can hold), tensors as Python numbers."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_summary(run_dir: str | Path, record: dict) -> Path:
    """Write ``record`` atomically so an interrupted run never leaves half a summary."""
    path = Path(run_dir) / SUMMARY
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics = {k: _plain(v) for k, v in record.get("metrics", {}).items()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**record, "metrics": metrics}, indent=2, default=str))
    tmp.replace(path)
    return path


def read_summary(run_dir: str | Path) -> dict | None:
    """The run's summary, or None when the run never wrote one."""
    path = Path(run_dir) / SUMMARY
    return json.loads(path.read_text()) if path.is_file() else None
