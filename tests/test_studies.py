"""The studies: each study's trend numbers and figure from job folders with known results (in
process), a study module found from its sweep's config alone, scales read from the sweep file,
the shattered-gradients measurement, one real multirun + report through the command line, and
(slow) every study's smoke sweep end to end."""

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

import dlstudies.config.argv
import dlstudies.studies
from conftest import make_cfg, run_command
from dlstudies.callbacks.diagnostics import autocorrelation, shattered_gradients
from dlstudies.config.argv import check_choices
from dlstudies.config.errors import ConfigError
from dlstudies.models import init
from dlstudies.models.mlp_classifier import MLPClassifier
from dlstudies.report import main, report, title
from dlstudies.studies.shattered_gradients import decay_lag, job_values
from dlstudies.summary import write_summary
from dlstudies.train import train

# sweep -> jobs at smoke scale (loss_landscape, on Fashion-MNIST: tests/test_cnn_experiments.py)
STUDIES = {"depth_vs_performance": 8, "batch_size": 2, "l2": 2, "activation": 2, "init": 2,
           "shattered_gradients": 8, "loss_landscape_mlp": 2, "norm_vs_batch_size": 6}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One MNIST-1D cache shared by the studies of this module."""
    return tmp_path_factory.mktemp("data")


def job(overrides: dict, test_err: float, train_err: float = 0.0, train_loss: float = 0.1,
        config: dict | None = None, diagnostics: dict | None = None, files: dict | None = None) -> dict:
    """One job to write: its sweep overrides (also its config values), results and extra JSON
    files (diagnostics.json, or any by name)."""
    metrics = {"test/acc": 1 - test_err, "trainset/acc": 1 - train_err, "trainset/loss": train_loss}
    files = (files or {}) | ({"diagnostics.json": diagnostics} if diagnostics else {})
    return {"overrides": overrides, "config": {**overrides, **(config or {})}, "metrics": metrics,
            "files": files}


def make_sweep(folder: Path, study: str, jobs: list[dict]) -> Path:
    """A sweep folder as a multirun leaves it: per job .hydra/{config,overrides}.yaml and
    summary.json (norm and activation as the job's choices), and the job's JSON files. The jobs
    are classifiers unless their config names another task."""
    for number, spec in enumerate(jobs):
        overrides = [f"{key}={value}" for key, value in spec["overrides"].items()]
        run = folder / f"{number}_{','.join(overrides)}"
        (run / ".hydra").mkdir(parents=True)
        cfg = OmegaConf.create({"seed": spec["overrides"].get("seed", 0), "study": {"name": study},
                                "model": {"_target_": "dlstudies.tasks.classifier.Classifier"}})
        for key, value in spec["config"].items():
            OmegaConf.update(cfg, key, value, force_add=True)
        OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
        OmegaConf.save(OmegaConf.create(overrides), run / ".hydra" / "overrides.yaml")
        choices = {k: v for k, v in spec["overrides"].items() if k in ("norm", "activation")}
        write_summary(run, {"status": "completed", "choices": choices, "metrics": spec["metrics"]})
        for name, content in spec["files"].items():
            (run / name).write_text(json.dumps(content))
    return folder


def trends(folder: Path, study: str, jobs: list[dict]) -> list[str]:
    """Report the sweep in process; its figure exists and its trend lines are returned."""
    outputs = report(make_sweep(folder, study, jobs), use_wandb=False)
    assert outputs["png"].stat().st_size > 10_000
    lines = outputs["txt"].read_text().splitlines()
    assert lines[0] == f"{study}: {len(jobs)} jobs {len(jobs)} completed"
    return lines[1:]


def test_depth_study_shows_plain_nets_degrading_beyond_16_layers(tmp_path: Path) -> None:
    jobs = [job({"model.net.depth": depth, "model.net.residual": residual, "norm": norm, "seed": seed},
                test_err=0.1 if residual else 0.2 if depth <= 16 else 0.4,
                train_loss=0.02 if residual else 0.1 if depth <= 16 else 0.5)
            for depth in (8, 16, 32, 56) for residual, norm in ((False, "none"), (True, "batchnorm"))
            for seed in (0, 1)]
    assert trends(tmp_path, "depth_vs_performance", jobs) == [
        "plain: training loss 0.100 at 8-16 layers vs 0.500 at 32+; test error 20.0% vs 40.0%",
        "residual + batchnorm: training loss 0.020 at 8-16 layers vs 0.020 at 32+; test error 10.0% vs 10.0%"]


def test_batch_size_study_gives_both_parts_ends_and_rank_correlation(tmp_path: Path) -> None:
    points = [("learning_rate", lr, 100, err) for lr, err in ((0.025, 0.415), (0.1, 0.40), (0.4, 0.392))]
    points += [("batch_size", 0.1, batch, err) for batch, err in ((16, 0.357), (64, 0.38), (256, 0.412))]
    jobs = [job({"study.point_name": f"{part}_{lr}_{batch}"}, test_err=err, train_err=0.01 * (batch == 16),
                config={"study.point.part": part, "optimizer.lr": lr, "data.batch_size": batch,
                        "trainer.max_steps": 1000})
            for part, lr, batch, err in points]
    assert trends(tmp_path, "batch_size", jobs) == [
        "lr: test error 41.5% at 0.025 -> 39.2% at 0.4; Spearman rho(test error, lr) = -1.00; "
        "training error <= 0.0%",
        "batch_size: test error 35.7% at 16 -> 41.2% at 256; Spearman rho(test error, batch_size) = +1.00; "
        "training error <= 1.0%"]


def test_l2_study_finds_the_best_penalty(tmp_path: Path) -> None:
    jobs = [job({"regularizer.l2": l2}, test_err=err)
            for l2, err in ((0, 0.524), (1e-4, 0.51), (1e-3, 0.493), (1e-2, 0.53))]
    assert trends(tmp_path, "l2", jobs) == [
        "test error 52.4% at lambda=0; best 49.3% at lambda=0.001; 53.0% at lambda=0.01"]


def test_init_study_follows_activation_std_to_the_last_hidden_layer(tmp_path: Path) -> None:
    # per seed: std of the first layer's, the last hidden layer's and the output layer's output
    profiles = {0.03: [[0.5, 1e-9, 1e-9], [0.5, 1e-11, 1e-11]], 0.125: [[1.0, 0.9, 0.8], [1.0, 0.9, 0.8]],
                0.25: [[2.0, 4e4, 9e4], [2.0, 9e4, 9e4]]}
    jobs = [job({"init.std": std, "seed": seed}, test_err={0.03: 0.8, 0.125: 0.4, 0.25: 0.6}[std],
                config={"model.net.depth": 2}, diagnostics={"history": [{"act_std": profile}]})
            for std, per_seed in profiles.items() for seed, profile in enumerate(per_seed)]
    assert trends(tmp_path, "init", jobs) == [
        "init std 0.03: activation std 0.5 at layer 0 -> 1e-10 at the last hidden layer; test error 80.0%",
        "init std 0.125: activation std 1 at layer 0 -> 0.9 at the last hidden layer; test error 40.0%",
        "init std 0.25: activation std 2 at layer 0 -> 6e+04 at the last hidden layer; test error 60.0%"]


def test_activation_study_ranks_activations_by_test_error(tmp_path: Path) -> None:
    jobs = [job({"activation": name}, test_err=err) for name, err in (("relu", 0.419), ("tanh", 0.356),
                                                                      ("selu", 0.396))]
    assert trends(tmp_path, "activation", jobs) == ["test error: tanh 35.6%, selu 39.6%, relu 41.9%"]


def test_activation_study_tells_swish_jobs_apart_by_beta(tmp_path: Path) -> None:
    jobs = [job({"activation": "swish", "activation.beta": beta, "activation.learnable": learnable}, test_err=err)
            for beta, learnable, err in ((0.4, False, 0.40), (1.4, False, 0.38), (1.0, True, 0.36))]
    assert trends(tmp_path, "activation", jobs) == [
        "test error: swish beta=1 learnt 36.0%, swish beta=1.4 38.0%, swish beta=0.4 40.0%"]


def test_loss_landscape_study_numbers_the_rougher_surface(tmp_path: Path) -> None:
    coords = [-1.0, -0.5, 0.0, 0.5, 1.0]
    bowl = [[a * a + b * b for b in coords] for a in coords]  # convex everywhere
    rough = [[v + 2.0 * ((i + j) % 2) for j, v in enumerate(row)] for i, row in enumerate(bowl)]
    jobs = [job({"model.net.residual": residual, "norm": "batchnorm", "seed": 0}, test_err=0.2,
                config={"model.net.depth": 55, "model.net._target_": "dlstudies.models.cnn.CNN"},
                files={"loss_landscape.json": {"coords": coords, "loss": surface}})
            for residual, surface in ((False, rough), (True, bowl))]
    # within radius 0.5 of the centre: the bowl rises to 0.25 at the axis points, the rough surface
    # to 0.25 + 2 (they are odd points); those are maxima along both axes: 5 of 9 interior points
    # convex. A convnet's layers are its 55 convolutions and the head.
    assert trends(tmp_path, "loss_landscape", jobs) == [
        "plain + batchnorm, 56 layers: training loss 0.000 at the minimum; within radius 0.5 from 0 to 2.25; "
        "locally convex at 56% of the grid",
        "residual + batchnorm, 56 layers: training loss 0.000 at the minimum; within radius 0.5 from 0 to 0.25; "
        "locally convex at 100% of the grid"]


def test_a_figure_redraws_from_its_table_under_a_title_naming_study_sweep_and_scale(tmp_path: Path) -> None:
    jobs = [job({"model.net.depth": depth, "model.net.residual": False, "norm": "none", "seed": 0},
                test_err=0.2, train_loss=loss, config={"study.scale": "default"})
            for depth, loss in ((8, 0.2), (32, 0.5))]
    sweep = make_sweep(tmp_path / "sweeps" / "+sweep=depth_vs_performance_data.path=_home_me_data", "depth_vs_performance", jobs)
    for run in sweep.iterdir():  # the job's choices name its sweep, as a real run's do
        write_summary(run, {**json.loads((run / "summary.json").read_text()), "choices": {"sweep": "depth_vs_performance"}})
    first = report(sweep, use_wandb=False)
    table, trends_text = tmp_path / "depth_vs_performance.csv", first["txt"].read_text()
    table.write_bytes(first["csv"].read_bytes())
    shutil.rmtree(tmp_path / "sweeps")  # the jobs' folders are gone; the table is enough
    second = report(table, use_wandb=False)
    assert second["txt"].read_text() == trends_text and second["png"].stat().st_size > 10_000
    assert title("depth_vs_performance", pd.read_csv(table)) == (
        "depth_vs_performance study: +sweep=depth_vs_performance, scale default, 2 jobs")


def test_norm_vs_batch_size_study_gives_error_and_mode_gap_at_both_ends(tmp_path: Path) -> None:
    results = {("batchnorm", 2): (0.60, 0.45), ("batchnorm", 128): (0.30, 0.31),
               ("layernorm", 2): (0.40, 0.40), ("layernorm", 128): (0.32, 0.32)}
    jobs = [job({"data.batch_size": batch, "norm": norm}, test_err=eval_err,
                files={"batch_statistics.json": {"eval_mode_err": eval_err, "train_mode_err": train_err}})
            for (norm, batch), (eval_err, train_err) in results.items()]
    assert trends(tmp_path, "norm_vs_batch_size", jobs) == [
        "batchnorm: test error 60.0% at batch 2 vs 30.0% at 128; training-mode minus evaluation-mode test "
        "error -15.0 points at batch 2, +1.0 at 128",
        "layernorm: test error 40.0% at batch 2 vs 32.0% at 128; training-mode minus evaluation-mode test "
        "error +0.0 points at batch 2, +0.0 at 128"]


def test_shattered_study_reads_each_jobs_autocorrelation(tmp_path: Path) -> None:
    lag1 = {(False, 2): 0.92, (False, 56): -0.03, (True, 2): 0.99, (True, 56): 0.5}
    jobs = [job({"model.net.depth": depth, "model.net.residual": residual, "norm": "batchnorm", "seed": seed},
                test_err=0.9, diagnostics={"shattered": {"lag1": value + shift, "autocorr": [1.0, value + shift,
                                                                                              (value + shift) / 2],
                                                         "gradient": [0.0, 1.0, -2.0]}})
            for (residual, depth), value in lag1.items() for seed, shift in ((0, 0.01), (1, -0.01))]
    # the seeds' mean; 1/e = 0.37: 0.46 and 0.495 stay above it to lag 2, 0.25 falls below at lag 2
    assert trends(tmp_path, "shattered_gradients", jobs) == [
        "plain + batchnorm (2 seeds): lag-1 autocorrelation 0.920 at depth 2 -> -0.030 at depth 56; below 1/e "
        "from lag > 2 -> 1",
        "residual + batchnorm (2 seeds): lag-1 autocorrelation 0.990 at depth 2 -> 0.500 at depth 56; below 1/e "
        "from lag > 2 -> 2"]


def test_decay_lag_is_the_first_lag_below_one_over_e() -> None:
    assert decay_lag([1.0, 0.5, 0.3, 0.5]) == 2 and decay_lag([1.0, 0.9]) == float("inf")


TOY_STUDY = '''
COLUMNS = {"width": "model.net.width"}

def job_values(job):
    return {"files": len(list(job.iterdir()))}

def draw(table, fig):
    fig.subplots().plot(table["width"], table["test/err"])
    fig.set_size_inches(6, 3)
    return [f"widths {sorted(table['width'])}"]
'''


def test_a_study_module_is_found_from_the_sweep_config_alone(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A new file in studies/ named like the sweep's study.name is all a study's report needs."""
    (tmp_path / "toy_study.py").write_text(TOY_STUDY)
    monkeypatch.setattr(dlstudies.studies, "__path__", [*dlstudies.studies.__path__, str(tmp_path)])
    jobs = [job({"model.net.width": width}, test_err=0.5) for width in (64, 32)]
    assert trends(tmp_path / "toy", "toy_study", jobs) == ["widths [32, 64]"]
    table = pd.read_csv(tmp_path / "toy" / "toy_study.csv")
    assert list(table["width"]) == [64, 32] and list(table["files"]) == [2, 2]  # .hydra, summary.json

    outputs = report(make_sweep(tmp_path / "other", "no_module", jobs), use_wandb=False)
    assert "png" not in outputs and outputs["txt"].read_text() == "no_module: 2 jobs 2 completed\n"


def test_the_table_holds_the_metrics_each_task_declares(tmp_path: Path) -> None:
    """A job's metric columns are its task's ``STUDY_METRICS``: a classifier's (an error rate is
    1 - the accuracy), a language model's; nothing else from the summary."""
    def metric_columns(folder: Path, spec: dict) -> pd.Series:
        table = pd.read_csv(report(make_sweep(folder, "no_module", [spec]), use_wandb=False)["csv"])
        return table[[c for c in table if "/" in c and not c.startswith("override:")]].iloc[0]

    classifier = metric_columns(tmp_path / "classifier", job({"seed": 0}, test_err=0.25))
    assert list(classifier.index) == ["trainset/loss", "trainset/acc", "best/val/loss", "val/acc", "test/loss",
                                      "test/acc", "test/err", "trainset/err"]
    assert classifier["test/err"] == 0.25 and classifier["trainset/err"] == 0.0
    lm = job({"seed": 0}, test_err=0.5, config={"model._target_": "dlstudies.tasks.language_model.LanguageModel"})
    lm["metrics"] = {"test/loss": 2.0, "test/ppl": 7.39, "train/loss": 1.9}
    values = metric_columns(tmp_path / "lm", lm)
    assert list(values.index) == ["best/val/loss", "val/acc", "test/loss", "test/ppl", "test/bpc", "test/acc"]
    assert values["test/ppl"] == 7.39 and values[["best/val/loss", "test/bpc"]].isna().all()


def test_scales_are_the_sizes_the_named_sweep_defines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_choices(["-m", "+sweep=l2", "study.scale=smoke"])
    with pytest.raises(ConfigError, match=r"^study.scale=huge is not an option of sweep=l2; "
                                          r"allowed: default, smoke$"):
        check_choices(["-m", "+sweep=l2", "study.scale=huge"])
    with pytest.raises(ConfigError, match=r"^sweep=depth is not an option; "
                                          r"allowed: activation, activation_swish, attention_vs_length, batch_size, "):
        check_choices(["-m", "study.scale=smoke", "+sweep=depth"])
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "toy.yaml").write_text("study:\n  sizes:\n    tiny: {}\n    full: {}\n")
    monkeypatch.setattr(dlstudies.config.argv, "CONF_DIR", tmp_path)
    check_choices(["-m", "+sweep=toy", "study.scale=tiny"])
    with pytest.raises(ConfigError, match=r"^study.scale=smoke is not an option of sweep=toy; "
                                          r"allowed: full, tiny$"):
        check_choices(["-m", "+sweep=toy", "study.scale=smoke"])


def test_report_of_a_missing_folder_exits_2_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(sys, "argv", ["dlstudies-report", str(tmp_path / "nowhere")])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    error = f"error: {tmp_path / 'nowhere'} is not a folder; give the folder of a multirun (or a report's .csv)\n"
    assert capsys.readouterr().err == error


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


def test_a_shattered_gradients_job_measures_before_training_for_its_report(tmp_path: Path, data_dir: Path) -> None:
    cfg = make_cfg(["+sweep=shattered_gradients", "study.scale=smoke", "logger=none", "model.net.depth=2",
                    f"paths.data_dir={data_dir}"], tmp_path)
    assert train(cfg)["status"] == "completed"
    values = job_values(Path(cfg.paths.output_dir))
    assert values["shattered_lag1"] > 0.9 and len(values["shattered_gradient"]) == 256  # shallow: smooth


def _sweep(study: str, tmp_path: Path, data_dir: Path, *extra: str) -> Path:
    result = run_command(["-m", f"+sweep={study}", "study.scale=smoke", "logger=none",
                          "hydra.launcher.n_jobs=1", f"paths.data_dir={data_dir}", *extra], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = tmp_path.glob("*/multiruns/*")  # outputs/<study.name>/multiruns/<the sweep's folder>
    return sweep


def test_a_study_with_a_diverged_job_runs_and_reports_through_the_commands(tmp_path: Path, data_dir: Path) -> None:
    sweep = _sweep("init", tmp_path, data_dir, "init.std=0.125,50")  # std 50 overflows: NaN loss
    result = run_command([str(sweep), "--no-wandb"], tmp_path, module="dlstudies.report")
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(sweep / "init.csv")
    assert sorted(table["status"]) == ["completed", "diverged"]
    assert (sweep / "init.png").is_file() and "1 diverged" in result.stdout
    assert "init std 50: activation std 320 at layer 0" in (sweep / "init.txt").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("study", STUDIES)
def test_smoke_study_then_report(study: str, tmp_path: Path, data_dir: Path) -> None:
    sweep = _sweep(study, tmp_path, data_dir)
    outputs = report(sweep, use_wandb=False)
    table = pd.read_csv(outputs["csv"])
    assert len(table) == STUDIES[study] == len(list(sweep.glob("*/summary.json")))
    assert set(table["status"]) == {"completed"}
    assert outputs["png"].is_file() and outputs["png"].stat().st_size > 10_000
    assert outputs["txt"].read_text().startswith(f"{table['study'][0]}: {STUDIES[study]} jobs")
    assert table["sweep"][0] == study and table["scale"][0] == "smoke"
