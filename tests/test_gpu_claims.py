"""Sweep jobs never share a GPU: claims, n_jobs, CUDA_VISIBLE_DEVICES, DDP, SLURM; proven on CPU
through the DLS_SIMULATE_GPUS seam (the machine pretends to have G GPUs and trains on CPU)."""

import contextlib
import copy
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from conftest import run_command
from dlstudies import CONF_DIR
from dlstudies.config.errors import ConfigError
from dlstudies.config.gpus import SIMULATE_GPUS, sweep_jobs
from dlstudies.config.resolvers import register_resolvers
from dlstudies.launch import claim_gpus, place_job
from dlstudies.train import run_job

# Bigram jobs of a few seconds, on simulated GPUs.
QUICK = ["model=bigram", "trainer.accelerator=gpu", "trainer.val_check_interval=5", "logger=csv",
         "samples=0", "test=false", "trainer.enable_progress_bar=false"]


def _sweep_job(overrides: list[str], tmp_path: Path) -> DictConfig:
    """One job's config as a multirun launcher hands it over, with the sweep's Hydra config set."""
    register_resolvers()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        sweep = compose("train", overrides=[f"paths.log_dir={tmp_path}", "hydra.mode=MULTIRUN", *overrides],
                        return_hydra_config=True)
    HydraConfig.instance().set_config(sweep)
    job = copy.deepcopy(sweep)
    with open_dict(job):
        job.paths.output_dir = str(tmp_path / "job")
        del job["hydra"]
    return job


@pytest.fixture
def four_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """A simulated 4-GPU machine, in a sweep folder of this test's own."""
    monkeypatch.setenv(SIMULATE_GPUS, "4")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("DLS_SWEEP_NAME", "sweep")


def test_claims_are_exclusive_all_or_nothing_and_wait_for_a_release(tmp_path: Path) -> None:
    held: list[list[str]] = []

    def two_gpus() -> None:
        with claim_gpus(tmp_path, ["0", "1", "2"], 2, poll_s=0.01) as gpus:
            held.append(gpus)

    with claim_gpus(tmp_path, ["0", "1", "2"], 1) as first:
        with claim_gpus(tmp_path, ["0", "1", "2"], 1) as second:
            assert (first, second) == (["0"], ["1"])
            waiter = threading.Thread(target=two_gpus)
            waiter.start()
            time.sleep(0.3)
            assert held == []  # only "2" is free: it waits without taking it
        waiter.join(timeout=5)  # "1" released while "0" is still held: it takes "1" and "2"
        assert held == [["1", "2"]]


def test_slots_fill_every_gpu_before_one_is_shared_and_never_exceed_their_number(tmp_path: Path) -> None:
    held: list[list[str]] = []

    def one_more() -> None:
        with claim_gpus(tmp_path, ["0", "1"], 1, slots=2, poll_s=0.01) as gpus:
            held.append(gpus)

    with contextlib.ExitStack() as four_jobs:
        claims = [four_jobs.enter_context(claim_gpus(tmp_path, ["0", "1"], 1, slots=2)) for _ in range(4)]
        assert claims == [["0"], ["1"], ["0"], ["1"]]
        waiter = threading.Thread(target=one_more)
        waiter.start()
        time.sleep(0.3)
        assert held == []  # both slots of both GPUs are taken: the fifth job waits
    waiter.join(timeout=5)
    assert held == [["0"]]
    with claim_gpus(tmp_path, ["0", "1"], 1, slots=2) as first, claim_gpus(tmp_path, ["0", "1"], 2, slots=2) as pair:
        assert (first, pair) == (["0"], ["1", "0"])  # a two-GPU job takes a slot on two different GPUs


def test_a_killed_jobs_gpu_is_claimed_by_the_rerun(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from dlstudies.launch import claim_gpus\n"
         f"with claim_gpus(Path({str(tmp_path)!r}), ['0'], 1):\n    print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with claim_gpus(tmp_path, ["0", "1"], 1) as gpus:
        assert gpus == ["1"]  # "0" is held by the running job
    holder.kill()  # SIGKILL: no clean-up code runs, the lock file stays
    holder.wait()
    with claim_gpus(tmp_path, ["0"], 1, poll_s=0.01) as gpus:
        assert gpus == ["0"] and (tmp_path / "0.lock").exists()


def test_jobs_claim_different_gpus_among_the_visible_ones(tmp_path: Path, four_gpus: None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    jobs = [_sweep_job(["trainer=gpu"], tmp_path) for _ in range(2)]
    with place_job(jobs[0]) as first, place_job(jobs[1]) as second:
        assert (first, second) == (["3"], ["1"])
        assert [(j.trainer.accelerator, j.trainer.devices) for j in jobs] == [("cpu", 1), ("cpu", 1)]
    assert sorted(p.name for p in (tmp_path / "train" / "multiruns" / "sweep" / ".gpu_claims").iterdir()) == \
        ["1.lock", "3.lock"]


def test_ddp_jobs_on_real_gpus_get_the_torch_indices_of_the_gpus_they_hold(
        tmp_path: Path, four_gpus: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SIMULATE_GPUS)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    jobs = [_sweep_job(["trainer=ddp", "trainer.devices=2"], tmp_path) for _ in range(2)]
    with place_job(jobs[0]) as first, place_job(jobs[1]) as second:
        assert (first, second) == (["4", "5"], ["6", "7"])
        assert [list(j.trainer.devices) for j in jobs] == [[0, 1], [2, 3]]
        assert jobs[0].trainer.accelerator == "auto"  # real GPUs: only the device list changes


@pytest.mark.parametrize("overrides", [["hydra/launcher=slurm", "trainer=gpu"], ["trainer=cpu"]])
def test_slurm_jobs_and_cpu_jobs_claim_nothing(overrides: list[str], tmp_path: Path, four_gpus: None) -> None:
    job = _sweep_job(overrides, tmp_path)
    with place_job(job) as gpus:
        assert gpus is None and job.trainer.devices == 1


@pytest.mark.parametrize(("devices", "message"), [
    ("8", "trainer.devices=8 is not allowed; this machine shows 4 GPU(s): 0, 1, 2, 3"),
    ("two", "trainer.devices=two is not allowed; it must be a count, -1, auto or a list of GPU indices")])
def test_bad_device_requests_are_one_line_errors(devices: str, message: str, tmp_path: Path, four_gpus: None) -> None:
    with pytest.raises(ConfigError) as error:
        with place_job(_sweep_job(["trainer=ddp", f"trainer.devices={devices}"], tmp_path)):
            pass
    assert str(error.value) == message


def test_n_jobs_is_one_per_gpu_set_and_one_per_core_without_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIMULATE_GPUS, "4")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert [sweep_jobs("gpu", 1), sweep_jobs("auto", 1), sweep_jobs("gpu", 2), sweep_jobs("gpu", "auto"),
            sweep_jobs("gpu", [0, 1]), sweep_jobs("cpu", 1)] == [4, 4, 2, 1, 1, -1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,2")
    assert sweep_jobs("gpu", 1) == 2
    monkeypatch.setenv(SIMULATE_GPUS, "0")
    assert sweep_jobs("auto", 1) == -1 and sweep_jobs("gpu", 1) == -1
    monkeypatch.setenv(SIMULATE_GPUS, "4")
    assert [sweep_jobs("gpu", 1, 8), sweep_jobs("gpu", 2, 3), sweep_jobs("cpu", 1, 8), sweep_jobs("gpu", 1, 0)] == \
        [16, 3, -1, 2]  # 2 visible GPUs (CUDA_VISIBLE_DEVICES=0,2) x slots / devices per job


def test_the_parallel_launcher_runs_one_job_per_gpu_pair(tmp_path: Path, four_gpus: None) -> None:
    _sweep_job(["hydra/launcher=parallel", "trainer=ddp", "trainer.devices=2"], tmp_path)
    assert HydraConfig.get().launcher.n_jobs == 2


def test_the_parallel_launcher_runs_gpus_times_jobs_per_gpu(tmp_path: Path, four_gpus: None) -> None:
    _sweep_job(["hydra/launcher=parallel", "trainer=gpu", "jobs_per_gpu=8"], tmp_path)
    assert HydraConfig.get().launcher.n_jobs == 32


def test_sweep_jobs_share_a_gpu_up_to_jobs_per_gpu(tmp_path: Path, four_gpus: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIMULATE_GPUS, "1")
    jobs = [_sweep_job(["trainer=gpu", "jobs_per_gpu=2"], tmp_path) for _ in range(3)]
    third: list[list[str] | None] = []

    def place_third() -> None:
        with place_job(jobs[2]) as gpus:
            third.append(gpus)

    with place_job(jobs[0]) as first, place_job(jobs[1]) as second:
        assert (first, second) == (["0"], ["0"])  # both slots of the one GPU
        waiter = threading.Thread(target=place_third)
        waiter.start()
        time.sleep(0.5)
        assert third == []  # no third slot: it waits
    waiter.join(timeout=5)
    assert third == [["0"]]


def test_jobs_per_gpu_below_one_stops_the_job_in_one_line_before_it_waits_for_a_gpu(
        tmp_path: Path, four_gpus: None, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        run_job(_sweep_job(["trainer=gpu", "jobs_per_gpu=0"], tmp_path))
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == "error: jobs_per_gpu=0 is not allowed; it must be an integer >= 1"


def _held_intervals(root: Path) -> list[tuple[str, float, float]]:
    """(GPU, start, end) of every GPU every finished job held."""
    summaries = [json.loads(p.read_text()) for p in root.rglob("summary.json")]
    assert summaries and all(s["status"] == "completed" for s in summaries)
    return [(gpu, s["started"], s["ended"]) for s in summaries for gpu in s["gpus"]]


def _assert_no_gpu_held_twice_at_once(intervals: list[tuple[str, float, float]]) -> None:
    for (gpu_a, start_a, end_a), (gpu_b, start_b, end_b) in itertools.combinations(intervals, 2):
        assert gpu_a != gpu_b or end_a <= start_b or end_b <= start_a, (gpu_a, start_a, end_a, start_b, end_b)


def test_six_jobs_of_different_lengths_on_two_gpus_never_share_one(tmp_path: Path, names_file: Path) -> None:
    # Lengths in an order where "job k on GPU k mod G" would start job 2 on the GPU job 0 still holds.
    # Job 0 runs for seconds (150 steps took 0.7 s, and in CI one worker once ran all six before the
    # other had started), so the second worker surely starts while job 0 holds a GPU.
    result = run_command(["-m", "hydra/launcher=parallel", "trainer.max_steps=1500,5,6,100,7,8", *QUICK,
                          f"data.path={names_file}"], tmp_path, env={SIMULATE_GPUS: "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    intervals = _held_intervals(tmp_path)
    assert len(intervals) == 6 and {gpu for gpu, _, _ in intervals} == {"0", "1"}
    _assert_no_gpu_held_twice_at_once(intervals)
    overlapping = [(a, b) for a, b in itertools.combinations(intervals, 2) if a[1] < b[2] and b[1] < a[2]]
    assert overlapping, "the two GPUs never trained at the same time"
    threads = {json.loads(p.read_text())["threads"] for p in tmp_path.rglob("summary.json")}
    assert threads == {max(1, (os.cpu_count() or 1) // 2)}  # n_jobs = 2 GPUs: half the cores each


def _most_at_once(intervals: list[tuple[str, float, float]], gpu: str) -> int:
    """The most jobs that held ``gpu`` at the same moment."""
    on_gpu = [(start, end) for name, start, end in intervals if name == gpu]
    return max(sum(s <= start < e for s, e in on_gpu) for start, _ in on_gpu)


@pytest.mark.slow  # ~20 s: three workers; placement with slots is also tested in-process above
def test_jobs_share_a_gpu_up_to_its_slots_and_fill_them(tmp_path: Path, names_file: Path) -> None:
    # One GPU with 2 slots, 3 workers: two long jobs fill both slots at once (each runs for
    # seconds), and the third worker's job waits for one of them instead of training beside them.
    result = run_command(["-m", "hydra/launcher=parallel", "jobs_per_gpu=2", "hydra.launcher.n_jobs=3",
                          "trainer.max_steps=1500,1500,5,6", *QUICK, f"data.path={names_file}"], tmp_path,
                         env={SIMULATE_GPUS: "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    intervals = _held_intervals(tmp_path)
    assert len(intervals) == 4 and _most_at_once(intervals, "0") == 2


@pytest.mark.slow  # ~50 s: DDP process groups per job; placement of DDP jobs is also tested in-process above
def test_two_gpu_ddp_jobs_on_four_gpus_never_overlap(tmp_path: Path, names_file: Path) -> None:
    result = run_command(["-m", "hydra/launcher=parallel", "trainer=ddp", "trainer.devices=2",
                          "trainer.max_steps=60,5,6", *QUICK, f"data.path={names_file}"], tmp_path,
                         env={SIMULATE_GPUS: "4"})
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = [json.loads(p.read_text()) for p in tmp_path.rglob("summary.json")]
    assert len(summaries) == 3  # rank 1 of each job wrote nothing of its own
    assert sorted(s["steps"] for s in summaries) == [5, 6, 60] and all(len(s["gpus"]) == 2 for s in summaries)
    _assert_no_gpu_held_twice_at_once(_held_intervals(tmp_path))
