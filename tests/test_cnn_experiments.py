"""Smoke runs of the convnet, recurrent and logistic-regression experiments, and the studies
(mnist1d_baselines, depth_vs_performance_cnn, loss_landscape) with their reports."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import make_cfg, run_command
from dlstudies.data.idx import write_idx
from dlstudies.data.mnist import FILES
from dlstudies.report import report
from dlstudies.summary import read_summary, write_summary
from dlstudies.train import train
from test_studies import job, make_sweep, trends

MNIST1D = ["mnist1d_linear", "mnist1d_mlp", "mnist1d_cnn", "mnist1d_gru"]
TINY = ["logger=none", "trainer.max_steps=4", "trainer.val_check_interval=2", "trainer.enable_progress_bar=false"]


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random 28x28 IDX images, enough for the depth study's 2000-image validation split."""
    folder = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 2100), ("test", 50)):
        write_idx(folder / FILES[f"{prefix}_images"], rng.integers(0, 255, (n, 28, 28)).astype(np.uint8))
        write_idx(folder / FILES[f"{prefix}_labels"], (np.arange(n) % 10).astype(np.uint8))
    return folder


@pytest.mark.parametrize("experiment", [*MNIST1D, "mnist_cnn", "fashion_mnist_cnn"])
def test_experiment_trains_and_tests(experiment: str, tmp_path: Path, idx_dir: Path) -> None:
    data = (["data.num_train=100", "data.num_val=50", "data.num_test=50", f"paths.data_dir={tmp_path}"]
            if experiment in MNIST1D else [f"data.path={idx_dir}", "data.val_size=20", "data.num_train=60"])
    cfg = make_cfg([f"experiment={experiment}", *TINY, *data], tmp_path)
    record = train(cfg)
    assert record["status"] == "completed" and 0 <= record["metrics"]["test/acc"] <= 1


def test_mnist1d_experiments_select_the_checkpoint_of_best_validation_accuracy(tmp_path: Path) -> None:
    cfg = make_cfg(["experiment=mnist1d_mlp"], tmp_path)
    assert (cfg.callbacks.checkpoint.monitor, cfg.callbacks.checkpoint.mode) == ("val/acc", "max")
    assert (cfg.optimizer.lr, cfg.data.batch_size, cfg.trainer.max_steps) == (0.01, 100, 6000)


def _with_experiments(sweep: Path, experiments: list[str]) -> Path:
    """Record each fake job's experiment among its choices, as a real run does."""
    for folder, experiment in zip(sorted(p for p in sweep.iterdir() if p.is_dir()), experiments):
        summary = read_summary(folder)
        write_summary(folder, {**summary, "choices": {**summary["choices"], "experiment": experiment}})
    return sweep


def test_baselines_report_puts_the_papers_accuracy_beside_ours(tmp_path: Path) -> None:
    runs = [(e, s, err) for e, errs in zip(MNIST1D, ([0.7, 0.68], [0.3, 0.34], [0.07, 0.05], [0.1, 0.1]))
            for s, err in enumerate(errs)]
    jobs = [job({"experiment": e, "seed": s}, err) for e, s, err in runs]
    sweep = _with_experiments(make_sweep(tmp_path / "sweep", "mnist1d_baselines", jobs), [e for e, _, _ in runs])
    outputs = report(sweep, use_wandb=False)
    assert outputs["png"].stat().st_size > 10_000
    assert outputs["txt"].read_text().splitlines()[3:] == [
        "| logistic regression | 32% | 31.0% +- 1.4 (2) |", "| MLP | 68% | 68.0% +- 2.8 (2) |",
        "| CNN | 94% | 94.0% +- 1.4 (2) |", "| GRU | 91% | 90.0% +- 0.0 (2) |"]


def test_depth_cnn_report_shows_plain_nets_degrading_and_residual_ones_not(tmp_path: Path) -> None:
    errors = {(19, False): 0.03, (55, False): 0.29, (19, True): 0.002, (55, True): 0.001}
    jobs = [job({"model.net.depth": d, "model.net.residual": r, "norm": "batchnorm"}, test_err=e + 0.1, train_err=e)
            for (d, r), e in errors.items()]
    assert trends(tmp_path, "depth_vs_performance_cnn", jobs) == [
        "plain + batchnorm: 20 layers: training error 3.0%, test error 13.0%; 56 layers: training error 29.0%, "
        "test error 39.0%",
        "residual + batchnorm: 20 layers: training error 0.2%, test error 10.2%; 56 layers: training error 0.1%, "
        "test error 10.1%"]


@pytest.mark.parametrize(("study", "jobs", "extra"), [
    ("depth_vs_performance_cnn", 4, ["data.path={idx}"]),
    pytest.param("mnist1d_baselines", 4, ["paths.data_dir={tmp}"], marks=pytest.mark.slow),
    pytest.param("loss_landscape", 2, ["data.path={idx}"], marks=pytest.mark.slow),
])
def test_smoke_study_then_report(study: str, jobs: int, extra: list[str], tmp_path: Path, idx_dir: Path) -> None:
    args = [a.format(idx=idx_dir, tmp=tmp_path) for a in extra]
    result = run_command(["-m", f"+sweep={study}", "study.scale=smoke", "hydra.launcher.n_jobs=1",
                          "logger=csv", *args], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / study / "multiruns").iterdir()
    outputs = report(sweep, use_wandb=False)
    table = pd.read_csv(outputs["csv"])
    assert len(table) == jobs and set(table["status"]) == {"completed"}
    assert outputs["png"].stat().st_size > 10_000
    if study == "depth_vs_performance_cnn":  # the curves come from each job's csv/metrics.csv
        assert all(len(eval(curve)) >= 2 for curve in table["curve_train_err"])
    if study == "loss_landscape":  # a 5 x 5 surface per net, around the convnets' minima
        assert all(len(eval(surface)) == 5 for surface in table["landscape_loss"])
