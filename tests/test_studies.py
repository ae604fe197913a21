"""The studies end to end at smoke scale: sweep, report (CSV, PNG, trends), divergence, errors."""

from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import run_command
from dlstudies.models import init
from dlstudies.models.mlp_classifier import MLPClassifier
from dlstudies.report import report
from dlstudies.studies.shattered import autocorrelation, shattered_gradients

# study -> jobs at smoke scale
STUDIES = {"depth_vs_performance": 8, "batch_size": 2, "l2": 2, "activation": 2, "init": 2,
           "shattered_gradients": 8}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One MNIST-1D cache shared by the studies of this module."""
    return tmp_path_factory.mktemp("data")


def _sweep(study: str, tmp_path: Path, data_dir: Path, *extra: str) -> Path:
    result = run_command(["-m", f"+sweep={study}", "study.scale=smoke", "logger=none",
                          "hydra.launcher.n_jobs=1", f"paths.data_dir={data_dir}", *extra], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / study / "multiruns").iterdir()
    return sweep


@pytest.mark.parametrize("study", STUDIES)
def test_smoke_study_then_report(study: str, tmp_path: Path, data_dir: Path) -> None:
    sweep = _sweep(study, tmp_path, data_dir)
    outputs = report(sweep, use_wandb=False)
    table = pd.read_csv(outputs["csv"])
    assert len(table) == STUDIES[study] == len(list(sweep.glob("*/summary.json")))
    assert set(table["status"]) == {"completed"}
    assert outputs["png"].is_file() and outputs["png"].stat().st_size > 10_000
    assert outputs["txt"].read_text().startswith(f"{study}: {STUDIES[study]} jobs")


def test_study_with_a_diverged_job_still_reports(tmp_path: Path, data_dir: Path) -> None:
    sweep = _sweep("init", tmp_path, data_dir, "init.std=0.125,50")  # std 50 overflows: NaN loss
    result = run_command([str(sweep), "--no-wandb"], tmp_path, module="dlstudies.report")
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(sweep / "init.csv")
    assert sorted(table["status"]) == ["completed", "diverged"]
    assert (sweep / "init.png").is_file() and "1 diverged" in result.stdout


def test_report_and_sweep_errors_are_one_line(tmp_path: Path) -> None:
    result = run_command([str(tmp_path / "nowhere")], tmp_path, module="dlstudies.report")
    assert result.returncode == 2 and "is not a folder" in result.stderr
    result = run_command(["-m", "+sweep=l2", "study.scale=huge"], tmp_path)
    assert result.returncode == 2 and "study.scale=huge is not an option" in result.stderr
    result = run_command(["-m", "+sweep=depth"], tmp_path)
    assert result.returncode == 2 and "sweep=depth is not an option" in result.stderr


def test_autocorrelation_of_known_signals() -> None:
    t = torch.linspace(0, 1, 512)
    assert autocorrelation(torch.sin(2 * torch.pi * t), 4)[1] > 0.99  # smooth: correlated
    noise = torch.randn(4096, generator=torch.Generator().manual_seed(0))
    ac = autocorrelation(noise, 3)
    assert ac[0] == pytest.approx(1.0) and abs(ac[1]) < 0.05  # white noise: uncorrelated


def test_gradients_shatter_in_deep_plain_nets_not_in_residual_ones() -> None:
    torch.manual_seed(0)
    x = torch.randn(17, 40)
    lag1 = {}
    for depth in (2, 56):
        for residual in (False, True):
            net = MLPClassifier(40, 10, depth=depth, width=128, residual=residual)
            init.he(net)
            lag1[depth, residual] = shattered_gradients(net, x, lines=16)["lag1"]
    assert lag1[2, False] > 0.9 and lag1[56, False] < lag1[2, False] - 0.05
    assert lag1[56, True] > lag1[56, False] + 0.05
