"""Sweeps that scale and survive: DDP on CPU, submitit, resume, separate folders, Optuna.
Parallel joblib sweeps and DDP inside them: test_gpu_claims.py."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import TINY, make_cfg, run_command
from dlstudies import ROOT
from dlstudies.config.gpus import SIMULATE_GPUS
from dlstudies.train import train


def _summaries(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.rglob("summary.json"))]


def _sweep_dirs(root: Path) -> list[Path]:
    return sorted(root.glob("train/multiruns/*"))


def _job_dirs(sweep: Path) -> list[Path]:
    """The folders of the jobs that started (as the report finds them)."""
    return sorted(p.parent.parent for p in sweep.glob("*/.hydra/config.yaml"))


def test_submitit_local_runs_a_sweep_job(tmp_path: Path, names_file: Path) -> None:
    # One job: the submission path (pickled job, its own process, results back) is the same for two.
    result = run_command(["-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                          "model=bigram", *TINY, f"data.path={names_file}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [s["status"] for s in _summaries(tmp_path)] == ["completed"]


DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
STEPS = ["trainer.max_steps=60", "trainer.val_check_interval=30", "optimizer.lr=0.01"]


def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path: Path, names_file: Path) -> None:
    one = train(make_cfg([*TINY, *STEPS, "data.batch_size=64", f"data.path={names_file}"], tmp_path / "one"))
    ddp = run_command([*TINY, *STEPS, *DDP, "data.batch_size=32", f"data.path={names_file}"], tmp_path / "two")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    (two,) = _summaries(tmp_path / "two")  # rank 1 wrote no folder
    assert two["status"] == "completed" and two["steps"] == 60
    assert two["metrics"]["val/loss"] == pytest.approx(one["metrics"]["val/loss"], abs=0.05)


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
    # On one simulated GPU: the killed job held it, and the rerun's jobs must get it back.
    (tmp_path / "crash_callback.py").write_text(textwrap.dedent(CRASH))
    args = ["-m", "model=bigram,mlp", "seed=1,2", "+callbacks.crash._target_=crash_callback.CrashAfter",
            "+callbacks.crash.step=15", "trainer.accelerator=gpu", *TINY, f"data.path={names_file}"]
    env = {"PYTHONPATH": str(tmp_path), SIMULATE_GPUS: "1"}
    first = run_command(args, tmp_path, env={**env, "CRASH": "1"})
    assert first.returncode == 3
    jobs = _job_dirs(_sweep_dirs(tmp_path)[0])
    assert [j.name for j in jobs] == ["0_model=bigram,seed=1", "1_model=bigram,seed=2"]  # 2, 3 never ran
    assert (jobs[1] / "checkpoints" / "last.ckpt").is_file()
    assert not (jobs[1] / "summary.json").exists()

    second = run_command(args, tmp_path, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert len(_sweep_dirs(tmp_path)) == 1
    actions = [json.loads((j / "summary.json").read_text())
               for j in _job_dirs(_sweep_dirs(tmp_path)[0])]
    assert second.stdout.count("skipped") == 1
    assert [a["action"] for a in actions] == ["started", "resumed", "started", "started"]
    assert all(a["status"] == "completed" and a["steps"] == 30 and a["gpus"] == ["0"] for a in actions)


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
