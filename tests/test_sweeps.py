"""Sweeps that scale and survive: joblib, DDP on CPU, submitit, resume, separate folders, Optuna."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import TINY, run_command
from dlstudies import ROOT


def _summaries(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.rglob("summary.json"))]


def _sweep_dirs(root: Path) -> list[Path]:
    return sorted(root.glob("train/multiruns/*"))


def test_joblib_runs_two_jobs_at_once_splitting_the_cores(tmp_path: Path, names_file: Path) -> None:
    result = run_command(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model=bigram,mlp",
                          *TINY, f"data.path={names_file}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = _summaries(tmp_path)
    assert sorted(s["choices"]["model"] for s in summaries) == ["bigram", "mlp"]
    assert all(s["status"] == "completed" for s in summaries)
    assert all(s["threads"] == max(1, (os.cpu_count() or 1) // 2) for s in summaries)


def test_submitit_local_runs_two_jobs(tmp_path: Path, names_file: Path) -> None:
    result = run_command(["-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                          "model=bigram,mlp", *TINY, f"data.path={names_file}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(s["status"] for s in _summaries(tmp_path)) == ["completed", "completed"]


DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
STEPS = ["trainer.max_steps=60", "trainer.val_check_interval=30", "optimizer.lr=0.01"]


def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path: Path, names_file: Path) -> None:
    single = run_command([*TINY, *STEPS, "data.batch_size=64", f"data.path={names_file}"], tmp_path / "one")
    ddp = run_command([*TINY, *STEPS, *DDP, "data.batch_size=32", f"data.path={names_file}"], tmp_path / "two")
    assert single.returncode == 0 and ddp.returncode == 0, ddp.stderr[-3000:]
    (one,), (two,) = _summaries(tmp_path / "one"), _summaries(tmp_path / "two")
    assert two["status"] == "completed" and two["steps"] == 60
    assert two["metrics"]["val/loss"] == pytest.approx(one["metrics"]["val/loss"], abs=0.05)
    assert len(list((tmp_path / "two").rglob("summary.json"))) == 1  # rank 1 wrote no folder


def test_ddp_inside_a_multirun(tmp_path: Path, names_file: Path) -> None:
    result = run_command(["-m", *DDP, "model=bigram,mlp", *TINY, f"data.path={names_file}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = _summaries(tmp_path)
    assert sorted(s["choices"]["model"] for s in summaries) == ["bigram", "mlp"]
    assert all(s["status"] == "completed" for s in summaries)


CRASH = """
import os
import lightning as L
from hydra.core.hydra_config import HydraConfig


class CrashAfter(L.Callback):
    # Simulates a killed process (a node failure) in job 1 after its first checkpoint, when CRASH=1.
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if os.environ.get("CRASH") and HydraConfig.get().job.num == 1 and trainer.global_step >= self.step:
            os._exit(3)
"""


def test_a_rerun_sweep_skips_resumes_and_starts_the_right_jobs(tmp_path: Path, names_file: Path) -> None:
    (tmp_path / "crash_callback.py").write_text(textwrap.dedent(CRASH))
    args = ["-m", "model=bigram,mlp", "seed=1,2", "+callbacks.crash._target_=crash_callback.CrashAfter",
            "+callbacks.crash.step=15", *TINY, f"data.path={names_file}"]
    env = {"PYTHONPATH": str(tmp_path)}
    first = run_command(args, tmp_path, env={**env, "CRASH": "1"})
    assert first.returncode == 3
    jobs = sorted(p for p in _sweep_dirs(tmp_path)[0].iterdir() if p.is_dir())
    assert [j.name for j in jobs] == ["0_model=bigram,seed=1", "1_model=bigram,seed=2"]  # 2, 3 never ran
    assert (jobs[1] / "checkpoints" / "last.ckpt").is_file()
    assert not (jobs[1] / "summary.json").exists()

    second = run_command(args, tmp_path, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert len(_sweep_dirs(tmp_path)) == 1
    actions = [json.loads((j / "summary.json").read_text())
               for j in sorted(p for p in _sweep_dirs(tmp_path)[0].iterdir() if p.is_dir())]
    assert second.stdout.count("skipped") == 1
    assert [a["action"] for a in actions] == ["started", "resumed", "started", "started"]
    assert all(a["status"] == "completed" and a["steps"] == 30 for a in actions)


def test_two_sweeps_started_at_once_do_not_share_folders(tmp_path: Path, names_file: Path) -> None:
    base = [sys.executable, str(ROOT / "train.py"), "-m", *TINY, f"data.path={names_file}",
            f"paths.log_dir={tmp_path}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([*base, f"model={m}"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for m in ("bigram", "mlp")]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    sweeps = _sweep_dirs(tmp_path)
    assert len(sweeps) == 2
    assert all(len(list(s.rglob("summary.json"))) == 1 for s in sweeps)


def test_optuna_search_saves_the_best_trial(tmp_path: Path, names_file: Path) -> None:
    result = run_command(["-m", "hparams_search=names_transformer", "hydra.sweeper.n_trials=3",
                          "model.net.width=16", "model.net.depth=1", *TINY,
                          f"data.path={names_file}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = _sweep_dirs(tmp_path)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] > 0 and "optimizer.lr" in best["best_params"]
    assert len(_summaries(tmp_path)) == 3
