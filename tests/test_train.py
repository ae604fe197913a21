"""The train command: its run folder, W&B offline, evaluate, sample, resume, multirun, divergence,
the summary of a failed run, and bad input. What needs the real command line runs it in a
subprocess; the rest goes in-process through the functions the command calls."""

import json
import math
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import TINY, make_cfg, run_command
from dlstudies.callbacks.divergence import StopOnDivergence
from dlstudies.callbacks.samples import SampleTexts
from dlstudies.checkpoint import load_module
from dlstudies.config.argv import check_choices
from dlstudies.config.errors import ConfigError
from dlstudies.summary import RunRecord, read_summary
from dlstudies.train import run_job, train

def _run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("summary.json"))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, names_file: Path) -> tuple[Path, str]:
    """One real training run of the default MLP on a small corpus, logging to CSV and to W&B
    (offline: no account), shared by several tests."""
    tmp = tmp_path_factory.mktemp("tiny_run")
    env = {"HOME": str(tmp), "NETRC": str(tmp / "netrc"), "WANDB_API_KEY": "", "WANDB_MODE": ""}  # no account
    tiny = [a for a in TINY if not a.startswith("logger=")]
    result = run_command([*tiny, "logger=[csv,wandb]", f"data.path={names_file}"], tmp, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = _run_dirs(tmp)
    return run_dir, result.stdout


def test_run_folder_holds_config_checkpoints_and_summary(tiny_run: tuple[Path, str]) -> None:
    run_dir, stdout = tiny_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["action"] == "started"
    assert summary["steps"] == 30 and summary["n_params"] > 10_000 and summary["wall_time_s"] > 0
    assert "data.path=" in " ".join(summary["overrides"])
    assert summary["choices"]["model"] == "mlp"
    for key in ("val/loss", "best/val/loss", "test/loss", "test/ppl", "test/bpc"):
        assert key in summary["metrics"], key
    assert summary["best_ckpt"] == str(run_dir / "checkpoints" / "best.ckpt")
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert len(summary["samples"]) == 3
    assert "run folder" in stdout and "bpc" in stdout and " | ".join(summary["samples"]) in stdout


def test_wandb_logs_offline_without_an_account_with_the_samples_table(tiny_run: tuple[Path, str]) -> None:
    run_dir, _ = tiny_run
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    assert list(offline.glob("run-*.wandb"))
    (table,) = offline.glob("files/media/table/samples_*.table.json")
    samples = json.loads((run_dir / "summary.json").read_text())["samples"]
    assert json.loads(table.read_text())["data"] == [[s] for s in samples]


def test_checkpoint_is_plain_data_and_evaluate_reproduces_test_loss(tiny_run: tuple[Path, str]) -> None:
    run_dir, _ = tiny_run
    checkpoint = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    assert checkpoint["dlstudies"]["model_kwargs"]["vocab"][0] == "\n"
    result = run_command([f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}"], run_dir,
                         module="dlstudies.evaluate")
    assert result.returncode == 0, result.stderr[-2000:]
    test_loss = json.loads((run_dir / "summary.json").read_text())["metrics"]["test/loss"]
    reported = float(result.stdout.split("test/loss")[1].split()[0])
    assert reported == pytest.approx(test_loss, abs=1e-4)


class _Weights:
    """A stand-in language model whose samples name the weights it holds."""

    def __init__(self) -> None:
        self.weights = "last"

    def sample(self, n: int, seed: int) -> list[str]:
        return [f"{self.weights} seed={seed}"] * n


@pytest.mark.parametrize("after_test", [True, False])
def test_samples_come_once_from_the_weights_the_run_reports(after_test: bool) -> None:
    """After a test, the texts are the tested (best) weights'; without one, the last weights'."""
    trainer, module = SimpleNamespace(callbacks=[], loggers=[]), _Weights()
    samples = SampleTexts(2, seed=7, after_test=after_test)
    samples.on_fit_end(trainer, module)
    module.weights = "best"  # what trainer.test(ckpt_path="best") loads
    samples.on_test_end(trainer, module)
    assert samples.texts == [f"{'best' if after_test else 'last'} seed=7"] * 2


def test_no_samples_after_divergence() -> None:
    divergence = StopOnDivergence()
    divergence.diverged_at = 3
    samples = SampleTexts(2, 7, after_test=False)
    samples.on_fit_end(SimpleNamespace(callbacks=[divergence], loggers=[]), _Weights())
    assert samples.texts is None


def test_sample_command_generates_names(tiny_run: tuple[Path, str]) -> None:
    run_dir, _ = tiny_run
    result = run_command([f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "n=4", "prompt=ma",
                          "seed=0"], run_dir, module="dlstudies.sample")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("ma") for line in lines)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_bad_checkpoints_give_one_line_errors(tiny_run: tuple[Path, str], tmp_path: Path,
                                              content: bytes | None) -> None:
    """What evaluate and sample load a checkpoint with."""
    run_dir, _ = tiny_run
    path = tmp_path / "bad.ckpt"
    if content is None:  # truncated
        content = (run_dir / "checkpoints" / "last.ckpt").read_bytes()[:5000]
    path.write_bytes(content)
    with pytest.raises(ConfigError) as error:
        load_module(path)
    assert "\n" not in str(error.value) and f"ckpt_path={path} is not a" in str(error.value)


def test_resume_from_last_checkpoint(tiny_run: tuple[Path, str], tmp_path: Path, names_file: Path) -> None:
    run_dir, _ = tiny_run
    last = run_dir / "checkpoints" / "last.ckpt"
    result = run_command([*TINY, f"data.path={names_file}", f"ckpt_path={last}", "trainer.max_steps=50"],
                         tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (resumed,) = _run_dirs(tmp_path)
    summary = json.loads((resumed / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 50


def test_a_multirun_has_a_folder_per_job_and_carries_on_past_divergence(tmp_path: Path,
                                                                       names_file: Path) -> None:
    result = run_command(["-m", "optimizer=sgd", "optimizer.lr=inf,0.1", *TINY, f"data.path={names_file}"],
                         tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = {json.loads((r / "summary.json").read_text())["status"]: r for r in _run_dirs(tmp_path)}
    assert sorted(summaries) == ["completed", "diverged"]
    diverged = json.loads((summaries["diverged"] / "summary.json").read_text())
    assert "optimizer.lr=inf" in diverged["overrides"] and diverged["diverged"].startswith("loss=nan")
    assert "samples" not in diverged and "test/loss" not in diverged["metrics"]  # nothing after divergence
    completed = json.loads((summaries["completed"] / "summary.json").read_text())
    assert "optimizer.lr=0.1" in completed["overrides"] and "test/loss" in completed["metrics"]


@pytest.mark.parametrize(("mode", "exit_code"), [("RUN", 1), ("MULTIRUN", None)])
def test_a_lone_diverged_run_exits_non_zero_a_sweep_job_does_not(mode: str, exit_code: int | None,
                                                                 tmp_path: Path, names_file: Path) -> None:
    cfg = make_cfg([f"hydra.mode={mode}", "optimizer=sgd", "optimizer.lr=inf", *TINY,
                    f"data.path={names_file}"], tmp_path)
    if exit_code is None:
        assert math.isnan(run_job(cfg))  # the sweeper's objective: the sweep carries on
    else:
        with pytest.raises(SystemExit) as exited:
            run_job(cfg)
        assert exited.value.code == exit_code
    assert read_summary(cfg.paths.output_dir)["status"] == "diverged"


def test_a_run_that_raises_is_recorded_as_failed_with_its_error(tmp_path: Path) -> None:
    cfg = make_cfg([], tmp_path)
    record = RunRecord(cfg, "start", n_params=100, started=time.time())
    trainer = SimpleNamespace(global_step=7, is_global_zero=True)
    with pytest.raises(KeyboardInterrupt), record.saved_on_exit(trainer):
        raise KeyboardInterrupt("stopped by hand")
    summary = read_summary(cfg.paths.output_dir)
    assert summary["status"] == "failed" and summary["error"] == "KeyboardInterrupt: stopped by hand"
    assert summary["steps"] == 7 and summary["n_params"] == 100 and summary["wall_time_s"] >= 0


def _empty_file(tmp_path: Path) -> str:
    (tmp_path / "empty.txt").write_text("\n\n")
    return str(tmp_path / "empty.txt")


BAD_INPUTS = {
    "unknown option": (["model=nosuchmodel"], "model=nosuchmodel"),
    "wrong type": (["data.batch_size=abc"], "data.batch_size='abc'"),
    "lr zero": (["optimizer.lr=0"], "optimizer.lr=0"),
    "lr negative": (["optimizer.lr=-0.1"], "optimizer.lr=-0.1"),
    "batch zero": (["data.batch_size=0"], "data.batch_size=0"),
    "missing path": (["data=chars"], "data.path is missing"),
    "absent file": (["data.path=/no/such/file.txt"], "/no/such/file.txt"),
    "empty corpus": (["data.path=EMPTY"], "empty corpus"),
    "context zero": (["model.net.context=0"], "model.net.context=0"),
    "missing checkpoint": (["ckpt_path=/no/such.ckpt"], "/no/such.ckpt"),
    "bad precision": (["trainer.precision=banana"], "banana"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_gives_a_one_line_error_before_training(case: str, tmp_path: Path) -> None:
    """In-process, through what the command runs: the group-option check on the command line,
    then train() (validation, building data, model and Trainer)."""
    args, expected = BAD_INPUTS[case]
    args = [a.replace("EMPTY", _empty_file(tmp_path)) for a in args]
    with pytest.raises(ConfigError) as error:
        check_choices(args)
        train(make_cfg([*args, *TINY], tmp_path))
    message = str(error.value)
    assert "\n" not in message and expected in message, message
    assert not _run_dirs(tmp_path)  # nothing trained, no summary written


def test_bad_input_end_to_end_exits_2_with_one_line_on_stderr(tmp_path: Path) -> None:
    result = run_command(["data.path=/no/such/file.txt", *TINY], tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip() == ("error: data.path=/no/such/file.txt does not exist; "
                                     "give a UTF-8 text file")
    assert not _run_dirs(tmp_path)
