"""End to end: the train command, its run folder, multirun, resume, evaluate, sample, errors."""

import json
from pathlib import Path

import pytest
import torch

from conftest import TINY, run_command


def _run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("summary.json"))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, names_file: Path) -> tuple[Path, str]:
    """One real training run of the default MLP on a small corpus, shared by several tests."""
    tmp = tmp_path_factory.mktemp("tiny_run")
    result = run_command([*TINY, f"data.path={names_file}"], tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = _run_dirs(tmp)
    return run_dir, result.stdout


def test_run_folder_holds_config_checkpoints_and_summary(tiny_run: tuple[Path, str]) -> None:
    run_dir, stdout = tiny_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["steps"] == 30 and summary["n_params"] > 10_000 and summary["wall_time_s"] > 0
    assert f"data.path=" in " ".join(summary["overrides"])
    assert summary["choices"]["model"] == "mlp"
    for key in ("val/loss", "best/val/loss", "test/loss", "test/ppl", "test/bpc"):
        assert key in summary["metrics"], key
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert len(summary["samples"]) == 3
    assert "run folder" in stdout and "bpc" in stdout


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
    run_dir, _ = tiny_run
    path = tmp_path / "bad.ckpt"
    if content is None:  # truncated
        content = (run_dir / "checkpoints" / "last.ckpt").read_bytes()[:5000]
    path.write_bytes(content)
    result = run_command([f"ckpt_path={path}"], tmp_path, module="dlstudies.sample")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "bad.ckpt" in result.stderr


def test_resume_from_last_checkpoint(tiny_run: tuple[Path, str], tmp_path: Path, names_file: Path) -> None:
    run_dir, _ = tiny_run
    last = run_dir / "checkpoints" / "last.ckpt"
    result = run_command([*TINY, f"data.path={names_file}", f"ckpt_path={last}", "trainer.max_steps=50"],
                         tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (resumed,) = _run_dirs(tmp_path)
    summary = json.loads((resumed / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 50


def test_two_job_multirun_has_a_folder_per_job(tmp_path: Path, names_file: Path) -> None:
    result = run_command(["-m", "model=bigram,mlp", *TINY, f"data.path={names_file}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = _run_dirs(tmp_path)
    assert len(runs) == 2 and runs[0] != runs[1]
    choices = {json.loads((r / "summary.json").read_text())["choices"]["model"] for r in runs}
    assert choices == {"bigram", "mlp"}


def test_divergence_is_recorded_and_a_multirun_carries_on(tmp_path: Path, names_file: Path) -> None:
    result = run_command(["-m", "optimizer=sgd", "optimizer.lr=inf,0.1", *TINY, f"data.path={names_file}"],
                         tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    statuses = sorted(json.loads((r / "summary.json").read_text())["status"] for r in _run_dirs(tmp_path))
    assert statuses == ["completed", "diverged"]


def test_a_lone_diverged_run_exits_non_zero(tmp_path: Path, names_file: Path) -> None:
    result = run_command(["optimizer=sgd", "optimizer.lr=inf", *TINY, f"data.path={names_file}"], tmp_path)
    assert result.returncode == 1 and "diverged" in result.stdout
    (run_dir,) = _run_dirs(tmp_path)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "diverged"


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
    args, expected = BAD_INPUTS[case]
    args = [a.replace("EMPTY", _empty_file(tmp_path)) for a in args]
    result = run_command([*args, *TINY], tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    message = result.stderr.strip()
    assert message.startswith("error:") and "\n" not in message and expected in message, message
    assert not _run_dirs(tmp_path)  # nothing trained, no summary written


def test_wandb_runs_offline_without_a_key(tmp_path: Path, names_file: Path) -> None:
    env = {"HOME": str(tmp_path), "WANDB_API_KEY": "", "WANDB_MODE": "", "NETRC": str(tmp_path / "netrc")}
    result = run_command([*TINY, "logger=wandb", f"data.path={names_file}"], tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = _run_dirs(tmp_path)
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
