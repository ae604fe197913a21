"""The train command: its run folder and what reproduces it, W&B offline, evaluate, sample, resume,
multirun, divergence, interruptions, the summary of a failed run, and bad input. What needs the
real command line runs it in a subprocess; the rest goes in-process through the functions the
command calls."""

import csv
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import TINY, make_cfg, run_command
from dlstudies import ROOT
from dlstudies.callbacks.divergence import StopOnDivergence
from dlstudies.callbacks.samples import Samples
from dlstudies.checkpoint import load_module, read_checkpoint
from dlstudies.config.argv import check_choices
from dlstudies.config.errors import ConfigError
from dlstudies.summary import RunRecord, read_summary
from dlstudies.train import run_job, train
from wandb_records import offline_run

# A user logged in to W&B (a netrc entry for the server) whose server cannot be reached.
UNREACHABLE_WANDB = "http://127.0.0.1:9"
TinyRun = tuple[Path, subprocess.CompletedProcess]

def _run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("summary.json"))


def wandb_env(tmp: Path, logged_in: bool) -> dict[str, str]:
    """A home without W&B settings; ``logged_in``: a netrc entry for a W&B server that cannot be
    reached (connections to it are refused)."""
    netrc = tmp / "netrc"
    if logged_in:
        netrc.write_text(f"machine {UNREACHABLE_WANDB.split('//')[1]} login user password {'a' * 40}\n")
        netrc.chmod(0o600)
    return {"HOME": str(tmp), "NETRC": str(netrc), "WANDB_API_KEY": "", "WANDB_MODE": "",
            "WANDB_BASE_URL": UNREACHABLE_WANDB}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, names_file: Path) -> TinyRun:
    """One real training run of the default MLP on a small corpus, logging to CSV and to W&B,
    shared by several tests. The user is logged in to a W&B server that cannot be reached, and
    asks for checkpoint uploads (which only an online run can do)."""
    tmp = tmp_path_factory.mktemp("tiny_run")
    tiny = [a for a in TINY if not a.startswith("logger=")]
    result = run_command([*tiny, "logger=[csv,wandb]", "logger.wandb.log_model=true", f"data.path={names_file}"],
                         tmp, env=wandb_env(tmp, logged_in=True))
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = _run_dirs(tmp)
    return run_dir, result


def test_run_folder_holds_config_checkpoints_and_summary(tiny_run: TinyRun) -> None:
    run_dir, result = tiny_run
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
    assert "run folder" in result.stdout and "bpc" in result.stdout and " | ".join(summary["samples"]) in result.stdout
    # Validation every 10 of 30 steps: 3 times, the last step's validation not repeated at the end.
    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    assert len([row for row in rows if row["val/loss"]]) == 3


def test_summary_records_what_reproduces_the_run(tiny_run: TinyRun) -> None:
    run_dir, _ = tiny_run
    summary = json.loads((run_dir / "summary.json").read_text())
    words = shlex.split(summary["command"])  # quoted as a shell needs it: 'logger=[csv,wandb]'
    assert words[:2] == ["python", str(ROOT / "train.py")] and "logger=[csv,wandb]" in words
    assert words[-1] == f"paths.log_dir={run_dir.parents[2]}"
    assert set(summary["versions"]) >= {"dlstudies", "torch", "lightning", "hydra"}
    assert summary["versions"]["torch"] == torch.__version__
    if (ROOT / ".git").exists():  # a checkout
        assert re.fullmatch(r"[0-9a-f]{40}", summary["git"]["commit"]) and isinstance(summary["git"]["dirty"], bool)


def test_wandb_unreachable_logs_offline_and_says_how_to_upload(tiny_run: TinyRun) -> None:
    """Logged in, but the server refuses connections: the run goes offline at once (and
    log_model=true does not stop it), tells how to sync, and its W&B run records the job type,
    tags, the best validation loss, the status and a clean exit."""
    run_dir, result = tiny_run
    assert f"wandb sync {run_dir}/wandb/offline-run-*" in result.stderr
    (table,) = (run_dir / "wandb").glob("offline-run-*/files/media/table/samples_*.table.json")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert json.loads(table.read_text())["data"] == [[s] for s in summary["samples"]]
    run = offline_run(run_dir)
    assert run["run"].job_type == "train" and set(run["run"].tags) == {"model:mlp", "data:names"}
    assert run["metrics"]["val/loss"].min
    assert json.loads(run["summary"]["val/loss"])["min"] == pytest.approx(summary["metrics"]["best/val/loss"])
    assert json.loads(run["summary"]["status"]) == "completed" and run["exit_code"] == 0


def test_checkpoint_is_plain_data_and_evaluate_reproduces_test_loss(tiny_run: TinyRun) -> None:
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
def test_samples_come_once_from_the_weights_the_run_reports(after_test: bool, tmp_path: Path) -> None:
    """After a test, the texts are the tested (best) weights'; without one, the last weights'."""
    trainer, module = SimpleNamespace(callbacks=[], loggers=[]), _Weights()
    samples = Samples(2, seed=7, after_test=after_test, folder=tmp_path, title="names")
    samples.on_fit_end(trainer, module)
    module.weights = "best"  # what trainer.test(ckpt_path="best") loads
    samples.on_test_end(trainer, module)
    assert samples.texts == [f"{'best' if after_test else 'last'} seed=7"] * 2


def test_no_samples_after_divergence(tmp_path: Path) -> None:
    divergence = StopOnDivergence()
    divergence.diverged_at = 3
    samples = Samples(2, 7, after_test=False, folder=tmp_path, title="names")
    samples.on_fit_end(SimpleNamespace(callbacks=[divergence], loggers=[]), _Weights())
    assert samples.texts is None


def test_sample_command_generates_names(tiny_run: TinyRun) -> None:
    run_dir, _ = tiny_run
    result = run_command([f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "n=4", "prompt=ma",
                          "seed=0"], run_dir, module="dlstudies.sample")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("ma") for line in lines)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_bad_checkpoints_give_one_line_errors(tiny_run: TinyRun, tmp_path: Path,
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


def test_resume_from_last_checkpoint_continues_its_wandb_run(tiny_run: TinyRun, tmp_path: Path,
                                                             names_file: Path) -> None:
    run_dir, _ = tiny_run
    last = run_dir / "checkpoints" / "last.ckpt"
    tiny = [a for a in TINY if not a.startswith("logger=")]
    result = run_command([*tiny, "logger=[csv,wandb]", f"data.path={names_file}", f"ckpt_path={last}",
                          "trainer.max_steps=50"], tmp_path, env=wandb_env(tmp_path, logged_in=False))
    assert result.returncode == 0, result.stderr[-3000:]
    (resumed,) = _run_dirs(tmp_path)
    summary = json.loads((resumed / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 50
    first, second = offline_run(run_dir)["run"], offline_run(resumed)["run"]
    assert second.run_id == first.run_id and second.resume  # the same W&B run, continued


def test_a_multirun_has_a_folder_per_job_and_carries_on_past_divergence(tmp_path: Path,
                                                                       names_file: Path) -> None:
    """Each job has its own W&B run in the sweep's group, tagged and marked with its outcome."""
    tiny = [a for a in TINY if not a.startswith("logger=")]
    result = run_command(["-m", "optimizer=sgd", "optimizer.lr=inf,0.1", *tiny, "logger=[csv,wandb]",
                          f"data.path={names_file}"], tmp_path, env=wandb_env(tmp_path, logged_in=False))
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = {json.loads((r / "summary.json").read_text())["status"]: r for r in _run_dirs(tmp_path)}
    assert sorted(summaries) == ["completed", "diverged"]
    diverged = json.loads((summaries["diverged"] / "summary.json").read_text())
    assert "optimizer.lr=inf" in diverged["overrides"] and diverged["diverged"].startswith("loss=nan")
    assert "samples" not in diverged and "test/loss" not in diverged["metrics"]  # nothing after divergence
    completed = json.loads((summaries["completed"] / "summary.json").read_text())
    assert "optimizer.lr=0.1" in completed["overrides"] and "test/loss" in completed["metrics"]
    runs = {status: offline_run(folder) for status, folder in summaries.items()}
    assert runs["completed"]["exit_code"] == 0 and runs["diverged"]["exit_code"] == 1
    assert json.loads(runs["diverged"]["summary"]["status"]) == "diverged"
    assert runs["diverged"]["run"].run_group == runs["completed"]["run"].run_group != ""
    assert runs["diverged"]["run"].run_id != runs["completed"]["run"].run_id


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


@pytest.mark.parametrize(("raised", "status", "error"), [
    (RuntimeError("out of memory"), "failed", "RuntimeError: out of memory"),
    (KeyboardInterrupt(), "interrupted", "interrupted by Ctrl-C (SIGINT)")])
def test_a_run_that_raises_is_recorded_with_its_error(raised: BaseException, status: str, error: str,
                                                     tmp_path: Path) -> None:
    cfg = make_cfg([], tmp_path)
    record = RunRecord(cfg, "start", n_params=100, started=time.time())
    trainer = SimpleNamespace(global_step=7, is_global_zero=True)
    with pytest.raises(type(raised)), record.saved_on_exit(trainer):
        raise raised
    summary = read_summary(cfg.paths.output_dir)
    assert summary["status"] == status and summary["error"] == error
    assert summary["steps"] == 7 and summary["n_params"] == 100 and summary["wall_time_s"] >= 0


SIGNALS = {"SIGINT": (signal.SIGINT, 130), "SIGTERM": (signal.SIGTERM, 143)}  # exit code: 128 + signal


@pytest.fixture(scope="module")
def interrupted_runs(tmp_path_factory: pytest.TempPathFactory, names_file: Path) -> dict[str, tuple[Path, str]]:
    """Two long runs (a checkpoint every 5 steps) started side by side, one stopped by Ctrl-C, the
    other by the SIGTERM a job scheduler sends; by signal name, the log folder and stderr."""
    tiny = [a for a in TINY if not a.startswith(("trainer.max_steps=", "trainer.val_check_interval="))]
    started = {}
    for name in SIGNALS:
        log_dir = tmp_path_factory.mktemp(name)
        command = [sys.executable, str(ROOT / "train.py"), *tiny, "trainer.max_steps=1000000",
                   "trainer.val_check_interval=5", f"data.path={names_file}", f"paths.log_dir={log_dir}"]
        # SIGINT as a terminal sends it (a background shell would start the process ignoring it)
        started[name] = log_dir, subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"}, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    for name, (log_dir, process) in started.items():
        while not list(log_dir.glob("train/runs/*/checkpoints/last.ckpt")) and time.time() < deadline:
            time.sleep(0.2)  # until it trains
        process.send_signal(SIGNALS[name][0])
    return {name: (log_dir, process.communicate(timeout=120)[1] + f"\nexit {process.returncode}")
            for name, (log_dir, process) in started.items()}


@pytest.mark.parametrize("name", SIGNALS)
def test_an_interrupted_run_saves_a_checkpoint_and_says_how_to_resume(
        name: str, interrupted_runs: dict[str, tuple[Path, str]], names_file: Path) -> None:
    log_dir, stderr = interrupted_runs[name]
    assert stderr.endswith(f"\nexit {SIGNALS[name][1]}"), stderr[-3000:]
    (run_dir,) = _run_dirs(log_dir)
    summary = read_summary(run_dir)
    assert summary["status"] == "interrupted" and summary["error"].startswith("interrupted by")
    saved = run_dir / "checkpoints" / "interrupted.ckpt"
    checkpoint = read_checkpoint(saved)  # a dlstudies checkpoint, as resuming reads it
    assert checkpoint["global_step"] == summary["steps"] > 0
    (line,) = [line for line in stderr.splitlines() if line.startswith("interrupted at step")]
    assert line.endswith(f"data.path={names_file} paths.log_dir={log_dir} ckpt_path={saved}")


def _bad_files(tmp_path: Path, names_file: Path) -> dict[str, str]:
    """Files a user might pass by mistake, by the placeholder the bad-input table names them with."""
    files = {"EMPTY": "\n\n".encode(), "UTF16": "anna\nbob\n".encode("utf-16"), "BINARY": bytes(range(64))}
    for name, content in files.items():
        (tmp_path / name.lower()).write_bytes(content)
    return {**{name: str(tmp_path / name.lower()) for name in files}, "FOLDER": str(tmp_path),
            "CORPUS": str(names_file)}


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
    "not a checkpoint": (["ckpt_path=CORPUS"], "ckpt_path=CORPUS is not a readable checkpoint"),
    "bad precision": (["trainer.precision=banana"], "banana"),
    "misspelt trainer argument": (["trainer.max_step=5"], "did you mean trainer.max_steps?"),
    "device as corpus": (["data.path=/dev/null"], "data.path=/dev/null is not a regular file"),
    "folder as corpus": (["data.path=FOLDER"], "data.path=FOLDER is a directory"),
    "utf-16 corpus": (["data.path=UTF16"], "data.path=UTF16 is not UTF-8 text (byte 0xff at offset 0"),
    "binary corpus": (["data.path=BINARY"], "data.path=BINARY holds NUL bytes"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_gives_a_one_line_error_before_training(case: str, tmp_path: Path, names_file: Path) -> None:
    """In-process, through what the command runs: the checks on the command line, then train()
    (validation, the checkpoint to resume, building data, model and Trainer)."""
    args, expected = BAD_INPUTS[case]
    for placeholder, path in _bad_files(tmp_path, names_file).items():
        args, expected = [a.replace(placeholder, path) for a in args], expected.replace(placeholder, path)
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
