"""Where and how one Hydra job runs: CPU threads and GPU per parallel job, resume or skip.

Hydra's launchers (basic, joblib, submitit) start the jobs; this module only adapts each job to
the launcher it finds itself in, so parallel jobs neither oversubscribe cores nor share a GPU, and
a re-run sweep continues where it stopped.
"""

import os
import sys
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

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


def place_job(cfg: DictConfig) -> None:
    """Give this job its share of the machine: cores / parallel jobs threads, and GPU k mod G."""
    jobs = parallel_jobs()
    threads = cfg.get("threads") or (max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None)
    if threads:
        torch.set_num_threads(threads)
    gpus = torch.cuda.device_count()
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    if jobs > 1 and gpus > 0 and accelerator in ("auto", "gpu", "cuda") and cfg.trainer.get("devices") == 1:
        with open_dict(cfg):
            cfg.trainer.devices = [HydraConfig.get().job.num % gpus]


def resume_point(cfg: DictConfig) -> tuple[str, str | None]:
    """``("skip", None)`` if this job already completed, ``("resume", last.ckpt)`` if it was cut
    off after a checkpoint, else ``("start", cfg.ckpt_path)``. Only multirun jobs with
    ``resume=true`` look at their folder: a single run's folder is always new.
    """
    if not (cfg.get("resume") and HydraConfig.initialized()
            and HydraConfig.get().mode == RunMode.MULTIRUN):
        return "start", cfg.ckpt_path
    run_dir = Path(cfg.paths.output_dir)
    summary = read_summary(run_dir)
    if summary is not None and summary.get("status") in ("completed", "diverged"):
        return "skip", None
    last = run_dir / "checkpoints" / "last.ckpt"
    return ("resume", str(last)) if last.is_file() else ("start", cfg.ckpt_path)


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


def run_ddp_ranks_from_job_config(ckpt_path: str | None) -> None:
    """Make Lightning's DDP launcher start every extra rank from this job's saved config.

    Lightning's own Hydra support re-runs ``sys.argv``, which inside a multirun (``-m``) launches
    the whole sweep again in every rank. Composing the job's ``.hydra/config.yaml`` instead gives
    each rank exactly this job's config, folder and checkpoint, for single runs and multiruns.
    Lightning has no public hook for this command, hence the patch of its module-level helper.
    """
    from lightning.pytorch.strategies.launchers import subprocess_script

    run_dir = HydraConfig.get().runtime.output_dir

    def command(local_rank: int) -> tuple[list[str], str]:
        args = [sys.executable, "-m", "dlstudies.train", f"--config-path={run_dir}/.hydra",
                "--config-name=config", f"hydra.run.dir='{run_dir}'", "hydra.output_subdir=null",
                f"hydra.job.name=ddp_rank_{local_rank}",
                f"ckpt_path='{ckpt_path}'" if ckpt_path else "ckpt_path=null"]
        return args, os.getcwd()

    subprocess_script._hydra_subprocess_cmd = command
