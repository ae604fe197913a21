"""Checkpoints and sweeps under real faults: a disk that fills up part way through a checkpoint,
a writer killed with SIGKILL mid-write, and checkpoints left truncated in a sweep's folders.

The full disk is a small tmpfs mounted under the test's folder where the machine lets us mount one
(root with CAP_SYS_ADMIN); elsewhere the kernel refuses the bytes instead through RLIMIT_FSIZE
(EFBIG, "File too large", part way through the write as ENOSPC would). Either way the failure is
the operating system's, reached through the real write path, with nothing of ours replaced.
"""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from conftest import TINY, make_cfg, run_command
from dlstudies.checkpoint import read_checkpoint
from dlstudies.summary import read_summary
from dlstudies.train import run_job

FAULT = """
import os
import resource
import shutil
import signal
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig


class DiskFills(L.Callback):
    # With FAULT=1, in job 1 of the sweep once its first checkpoints are saved (step 10): the disk
    # fills up (DISK: a file takes all but half a checkpoint's space; else RLIMIT_FSIZE lets no file
    # grow beyond half a checkpoint), so the next checkpoint fails part way, and so do job 2's.
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not os.environ.get("FAULT") or HydraConfig.get().job.num != 1 or trainer.global_step != 15:
            return
        half = (Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt").stat().st_size // 2
        if os.environ.get("DISK"):
            with open(Path(os.environ["DISK"]) / "filler", "wb") as filler:
                filler.write(bytes(shutil.disk_usage(os.environ["DISK"]).free - half))
        else:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write() instead of a kill
            resource.setrlimit(resource.RLIMIT_FSIZE, (half, resource.RLIM_INFINITY))
"""


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | None]:
    """A 16 MB tmpfs, or None where this machine may not mount one (not root, a container
    without CAP_SYS_ADMIN)."""
    disk = tmp_path_factory.mktemp("disk")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)],
                             capture_output=True).returncode == 0
    yield disk if mounted else None
    if mounted:
        subprocess.run(["umount", "-l", str(disk)], check=True)


class Sweep:
    """A three-job sweep (seeds 1-3) with the fault callback, run in ``log_dir`` (the tmpfs if any)."""

    def __init__(self, log_dir: Path, disk: Path | None, names_file: Path, callback_dir: Path) -> None:
        (callback_dir / "fault_callback.py").write_text(textwrap.dedent(FAULT))
        self.log_dir, self.disk = log_dir, disk
        self.args = ["-m", "seed=1,2,3", "+callbacks.fault._target_=fault_callback.DiskFills", *TINY,
                     f"data.path={names_file}"]
        self.env = {"PYTHONPATH": str(callback_dir), **({"DISK": str(disk)} if disk else {})}

    def run(self, fault: bool) -> subprocess.CompletedProcess:
        return run_command(self.args, self.log_dir, env={**self.env, **({"FAULT": "1"} if fault else {})})

    def jobs(self) -> list[Path]:
        (folder,) = self.log_dir.glob("train/multiruns/*")
        return sorted(p for p in folder.iterdir() if p.is_dir() and p.name[0].isdigit())


@pytest.fixture(scope="module")
def full_disk_sweep(small_disk: Path | None, tmp_path_factory: pytest.TempPathFactory,
                    names_file: Path) -> tuple[Sweep, subprocess.CompletedProcess]:
    """The sweep, run once with its disk filling up during job 1."""
    sweep = Sweep(small_disk or tmp_path_factory.mktemp("logs"), small_disk, names_file,
                  tmp_path_factory.mktemp("callback"))
    return sweep, sweep.run(fault=True)


def _all_whole(jobs: list[Path]) -> None:
    """Every checkpoint under its final name loads; no temporary file is left behind."""
    for job in jobs:
        for checkpoint in job.rglob("*.ckpt"):
            read_checkpoint(checkpoint)
        assert not list(job.rglob("*.tmp"))


def test_a_full_disk_fails_its_job_in_one_line_keeping_whole_checkpoints(full_disk_sweep) -> None:
    """Job 0 completes; the disk fills in job 1 after its step-10 checkpoints, so its step-20
    checkpoint fails part way; job 2 fails at its first. The sweep carries on to the end."""
    sweep, result = full_disk_sweep
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    jobs = sweep.jobs()
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    full = r"\[Errno (28|27)\] (No space left on device|File too large)"  # ENOSPC; EFBIG without the tmpfs
    assert len(failed) == 2, result.stderr[-3000:]
    checkpoints = jobs[1] / "checkpoints"
    folder = re.escape(str(checkpoints))
    assert re.fullmatch(rf"failed: {full}: '{folder}/(best|last)\.ckpt'; [\d.]+ [MG]B free in {folder}; "
                        r"kept checkpoints/last\.ckpt, the last whole checkpoint", failed[0]), failed[0]
    assert failed[1].endswith("; no checkpoint saved yet") and str(jobs[2]) in failed[1]
    summaries = [json.loads((job / "summary.json").read_text()) for job in jobs]
    assert [s["status"] for s in summaries] == ["completed", "failed", "failed"]
    assert summaries[1]["error"].split("; ")[0] == failed[0].removeprefix("failed: ").split("; ")[0]
    assert read_checkpoint(checkpoints / "last.ckpt")["global_step"] == 10
    _all_whole(jobs)


def test_a_sweep_rerun_completes_every_job_past_unreadable_checkpoints(full_disk_sweep) -> None:
    """With space again, job 1's last.ckpt truncated (as the old writer left it on a full disk) and
    a truncated last.ckpt in job 2's folder, the rerun skips both files in one line each: job 1
    resumes from its best.ckpt, job 2 starts again from step 0, and every job completes."""
    sweep, _ = full_disk_sweep
    if sweep.disk:
        (sweep.disk / "filler").unlink()
    jobs = sweep.jobs()
    bad = [jobs[1] / "checkpoints" / "last.ckpt", jobs[2] / "checkpoints" / "last.ckpt"]
    whole = (jobs[1] / "checkpoints" / "best.ckpt").read_bytes()
    for file in bad:
        file.parent.mkdir(exist_ok=True)
        file.write_bytes(whole[: len(whole) // 4])
    result = sweep.run(fault=False)
    assert result.returncode == 0, result.stderr[-3000:]
    unreadable = "not a readable checkpoint: truncated, or not a PyTorch checkpoint of plain tensors and data"
    assert [line for line in result.stderr.splitlines() if line.startswith("resume:")] == [
        f"resume: skipped {bad[0]}: {unreadable}",
        f"resume: skipped {bad[1]}: {unreadable}",
        f"resume: no readable checkpoint in {bad[1].parent}: the job starts again from step 0"]
    summaries = [json.loads((job / "summary.json").read_text()) for job in jobs]
    assert [(s["status"], s["action"], s["steps"]) for s in summaries] == [
        ("completed", "started", 30), ("completed", "resumed", 30), ("completed", "started", 30)]
    _all_whole(jobs)


def test_a_lone_run_that_cannot_write_exits_1_in_one_line(tmp_path: Path, names_file: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    """Any OSError while writing ends a single run the same way; here the OS refuses to make the
    checkpoint folder, as a file already has its name."""
    cfg = make_cfg(["hydra.mode=RUN", *TINY, f"data.path={names_file}"], tmp_path)
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoints").write_text("")
    with pytest.raises(SystemExit) as exited:
        run_job(cfg)
    assert exited.value.code == 1
    line = capsys.readouterr().err.strip()
    assert re.fullmatch(rf"failed: \[Errno 17\] File exists: '{re.escape(str(run_dir))}/checkpoints'; "
                        rf"[\d.]+ [MG]B free in {re.escape(str(run_dir))}; no checkpoint saved yet", line), line
    summary = read_summary(run_dir)
    assert summary["status"] == "failed" and summary["error"].startswith("[Errno 17] File exists")


WRITER = """
import sys
import torch
from dlstudies.checkpoint import AtomicCheckpointIO

writer = AtomicCheckpointIO()  # what the train command's Trainer saves every checkpoint with
for version in range(1000):  # 32 MB each: long enough to be caught part way
    writer.save_checkpoint({"version": version, "weights": torch.full((2**23,), float(version))}, sys.argv[1])
"""


def test_a_writer_killed_mid_checkpoint_leaves_the_last_whole_one(tmp_path: Path) -> None:
    """SIGKILL while a checkpoint's bytes are going to disk (its temporary file part written):
    the file under the final name is the previous checkpoint, whole."""
    folder = tmp_path / "checkpoints"
    target = folder / "last.ckpt"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline, partial = time.time() + 60, None
    while partial is None and time.time() < deadline and writer.poll() is None:
        for tmp in folder.glob(".last.ckpt.*.tmp") if target.exists() else []:
            try:
                if 0 < tmp.stat().st_size < target.stat().st_size:
                    writer.send_signal(signal.SIGKILL)
                    partial = tmp
            except FileNotFoundError:  # renamed between glob and stat
                pass
    writer.kill()  # still running if it was never caught part way
    writer.wait(timeout=30)
    assert partial is not None, "no checkpoint write was caught part way"
    assert partial.stat().st_size < target.stat().st_size  # the kill landed part way
    saved = torch.load(target, weights_only=True)
    assert saved["weights"].shape == (2**23,) and bool((saved["weights"] == saved["version"]).all())
