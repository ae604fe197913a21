"""Where and how one Hydra job runs: CPU threads and GPUs per parallel job, resume or skip.

Hydra's launchers (basic, joblib, submitit) start the jobs; this module only adapts each job to
the launcher it finds itself in, so parallel jobs neither oversubscribe cores nor share a GPU, and
a re-run sweep continues where it stopped.
"""

import fcntl
import itertools
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from dlstudies.checkpoint import saved_checkpoints, why_not_resumable
from dlstudies.config.errors import ConfigError
from dlstudies.config.gpus import SIMULATE_GPUS, gpu_request, visible_gpus
from dlstudies.summary import read_summary


def parallel_jobs() -> int:
    """How many jobs of this sweep run at once on this machine (joblib's n_jobs; else 1)."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return 1
    launcher = HydraConfig.get().launcher
    if "joblib" not in str(launcher.get("_target_", "")).lower():
        return 1
    n_jobs = launcher.get("n_jobs") or 1
    cores = os.cpu_count() or 1
    return cores if n_jobs < 0 else min(int(n_jobs), cores * 4)


def _lock_file(lock_dir: Path, name: str, slot: int) -> Path:
    """Slot ``slot`` of GPU ``name``: ``<gpu>.lock`` for the first, ``<gpu>.<slot>.lock`` after."""
    return lock_dir / (re.sub(r"[^\w.-]", "_", name) + (f".{slot}" if slot else "") + ".lock")


@contextmanager
def claim_gpus(lock_dir: Path, names: Sequence[str], count: int, slots: int = 1,
               poll_s: float = 0.2) -> Iterator[list[str]]:
    """Hold a slot on each of ``count`` different GPUs of ``names`` (each GPU has ``slots``: the
    jobs it runs at once) that no other process claiming in ``lock_dir`` holds, waiting until
    enough are free; yields the names of the GPUs held.

    One ``flock`` per slot file: the kernel drops a process's locks when it dies, however it dies
    (a crash, SIGKILL, an out-of-memory kill), so a killed job never blocks a GPU, and a re-run
    needs no clean-up. A GPU per joblib worker would not do: loky restarts workers, and a job
    cannot tell which worker it is in. All ``count`` GPUs or none are held, so two DDP jobs never
    hold half of each other's GPUs while waiting. Slots are tried level by level (the first slot
    of every GPU before any GPU's second), so jobs spread over the GPUs before they share one.
    """
    lock_dir.mkdir(parents=True, exist_ok=True)
    waiting = False
    while True:
        held: list[tuple[str, int]] = []
        for slot, name in itertools.product(range(slots), names):
            if name in dict(held):  # one slot per GPU: a job's devices are different GPUs
                continue
            fd = os.open(_lock_file(lock_dir, name, slot), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append((name, fd))
            except BlockingIOError:
                os.close(fd)
            if len(held) == count:
                break
        if len(held) == count:
            break
        _release(held)
        if not waiting:
            print(f"waiting for {count} free GPU(s) of {', '.join(names)}", file=sys.stderr, flush=True)
            waiting = True
        time.sleep(poll_s)
    try:
        yield [name for name, _ in held]
    finally:
        _release(held)


def _release(held: list[tuple[str, int]]) -> None:
    for _, fd in held:
        fcntl.flock(fd, fcntl.LOCK_UN)  # unlocks even if a forked DataLoader worker shares the fd
        os.close(fd)


def _claims_gpus(cfg: DictConfig) -> bool:
    """Multirun jobs on this machine claim their GPUs; single runs use the ones they are given.
    (submitit_local hands every job the same first ``gpus_per_node`` GPUs, so its jobs claim too.)

    On SLURM (``hydra/launcher=slurm``) each array task gets its own ``gpus_per_node``, which SLURM
    exposes through ``CUDA_VISIBLE_DEVICES``: there is nothing to claim, and locks in a sweep
    folder that several nodes share would make jobs on different nodes wait for each other.
    """
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return False
    return "slurm" not in str(HydraConfig.get().launcher.get("_target_", "")).lower()


@contextmanager
def place_job(cfg: DictConfig) -> Iterator[list[str] | None]:
    """Give this job its share of the machine while it runs: cores / parallel jobs torch threads
    and, in a multirun, GPUs on which fewer than ``jobs_per_gpu`` other running jobs of the sweep
    train (one by default: a GPU of its own), released however the job ends. Yields the names of
    the GPUs held (None when it claims none)."""
    jobs = parallel_jobs()
    threads = cfg.get("threads") or (max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None)
    if threads:
        torch.set_num_threads(threads)
    names = visible_gpus()
    devices = cfg.trainer.get("devices", 1)
    request = gpu_request(cfg.trainer.get("accelerator", "auto"), devices, len(names))
    if request is None or not _claims_gpus(cfg) or finished(cfg):
        yield None
        return
    candidates, count = request
    if count > len(candidates) or max(candidates) >= len(names):
        raise ConfigError(f"trainer.devices={devices} is not allowed; this machine shows "
                          f"{len(names)} GPU(s): {', '.join(names) or 'none'}")
    lock_dir = Path(HydraConfig.get().sweep.dir) / ".gpu_claims"
    with claim_gpus(lock_dir, [names[i] for i in candidates], count, cfg.get("jobs_per_gpu", 1)) as held:
        with open_dict(cfg):
            if os.environ.get(SIMULATE_GPUS):
                cfg.trainer.accelerator, cfg.trainer.devices = "cpu", len(held)
            else:
                cfg.trainer.devices = [names.index(name) for name in held]
        yield held


def _resumes(cfg: DictConfig) -> bool:
    """Only multirun jobs with ``resume=true`` look at their folder: a single run's folder is always new."""
    return bool(cfg.get("resume") and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN)


def finished(cfg: DictConfig) -> bool:
    """Whether this sweep job completed (or diverged) when its sweep ran before."""
    summary = read_summary(cfg.paths.output_dir) if _resumes(cfg) else None
    return summary is not None and summary.get("status") in ("completed", "diverged")


def resume_point(cfg: DictConfig) -> tuple[str, str | None]:
    """``("skip", None)`` if this job already completed, ``("resume", <checkpoint>)`` if it was cut
    off after a checkpoint (the newest one it can resume from), else ``("start", cfg.ckpt_path)``.

    Checkpoints are tried newest first (last, interrupted, best); each one that cannot be read (a
    file an older version or another program left truncated) is skipped with a line saying why,
    so that one job's bad file never stops the sweep.
    """
    if finished(cfg):
        return "skip", None
    if not _resumes(cfg):
        return "start", cfg.ckpt_path
    run_dir = Path(cfg.paths.output_dir)
    saved = saved_checkpoints(run_dir)
    for checkpoint in saved:
        reason = why_not_resumable(checkpoint)
        if reason is None:
            return "resume", str(checkpoint)
        _say(f"skipped {checkpoint}: {reason}")
    if saved:
        _say(f"no readable checkpoint in {run_dir / 'checkpoints'}: the job starts again from "
             f"{cfg.ckpt_path or 'step 0'}")
    return "start", cfg.ckpt_path


def _say(line: str) -> None:
    print(f"resume: {line}", file=sys.stderr, flush=True)


_DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE", "GLOBAL_RANK")


def forget_ddp_job(env_before: set[str]) -> None:
    """After a DDP job, drop the process group and the rendezvous variables Lightning exported.

    Lightning treats an inherited ``LOCAL_RANK`` as "processes are started externally", so the
    next DDP job of a multirun in this process would wait forever for ranks nobody starts.
    """
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    for key in _DDP_ENV:
        if key not in env_before:
            os.environ.pop(key, None)


def run_ddp_ranks_from_job_config(cfg: DictConfig, ckpt_path: str | None) -> None:
    """Make Lightning's DDP launcher start every extra rank from this job's saved config.

    Lightning's own Hydra support re-runs ``sys.argv``, which inside a multirun (``-m``) launches
    the whole sweep again in every rank. Composing the job's ``.hydra/config.yaml`` instead gives
    each rank exactly this job's config, folder and checkpoint, for single runs and multiruns,
    and the devices ``place_job`` gave rank 0 (the GPUs it claimed).
    Lightning has no public hook for this command, hence the patch of its module-level helper.
    """
    from lightning.pytorch.strategies.launchers import subprocess_script

    run_dir = HydraConfig.get().runtime.output_dir
    devices = cfg.trainer.devices
    if OmegaConf.is_list(devices):
        devices = f"[{','.join(map(str, devices))}]"
    elif isinstance(devices, str):
        devices = f"'{devices}'"  # unquoted, "0,1" would read as a sweep
    placed = [f"trainer.accelerator={cfg.trainer.accelerator}", f"trainer.devices={devices}"]

    def command(local_rank: int) -> tuple[list[str], str]:
        args = [sys.executable, "-m", "dlstudies.train", f"--config-path={run_dir}/.hydra",
                "--config-name=config", f"hydra.run.dir='{run_dir}'", "hydra.output_subdir=null",
                f"hydra.job.name=ddp_rank_{local_rank}",
                f"ckpt_path='{ckpt_path}'" if ckpt_path else "ckpt_path=null", *placed]
        return args, os.getcwd()

    subprocess_script._hydra_subprocess_cmd = command
