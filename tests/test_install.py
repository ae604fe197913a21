"""A plain (non-editable) install ships every config and study: the wheel holds real copies of
conf/ and of sweeps/ (which conf/sweep links to). .ci/run installs that wheel into a fresh venv
and runs it from another directory."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from dlstudies import ROOT


def test_the_wheel_holds_every_yaml_of_conf_and_sweeps(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ behind
    for name in ("src", "conf", "sweeps"):
        shutil.copytree(ROOT / name, source / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                            "--no-build-isolation", "--wheel-dir", str(tmp_path), str(source)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("dlstudies-*.whl")
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".yaml")}
    expected = {f"dlstudies/conf/{p.relative_to(ROOT / 'conf')}" for p in (ROOT / "conf").rglob("*.yaml")}
    expected |= {f"dlstudies/conf/sweep/{p.relative_to(ROOT / 'sweeps')}" for p in (ROOT / "sweeps").rglob("*.yaml")}
    assert len(expected) > 90 and "dlstudies/conf/sweep/l2.yaml" in expected
    assert expected <= shipped, sorted(expected - shipped)
