"""The ``${dls.*:}`` interpolations the YAML files use, and the folder names of runs and sweeps."""

import hashlib
import json
import os
import re
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

from dlstudies import ROOT
from dlstudies.config.gpus import sweep_jobs
from dlstudies.config.help import help_text
from dlstudies.config.wandb_login import wandb_offline


def job_name() -> str | None:
    """The job's overrides as a name (``model=mlp,norm=layernorm``); None for a plain run."""
    return HydraConfig.get().job.override_dirname or None if HydraConfig.initialized() else None


def sweep_group() -> str | None:
    """One W&B group per multirun: the sweep folder; single runs have no group."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir).name


def _slug(text: str, limit: int) -> str:
    """A folder-safe name for ``text``: readable up to ``limit`` characters, then a short hash."""
    safe = re.sub(r"[^\w=,.+-]+", "_", text).strip("_")
    if len(safe) <= limit:
        return safe
    return f"{safe[:limit]}~{hashlib.sha1(text.encode()).hexdigest()[:8]}"


# Overrides that say how or where a sweep runs, not what it computes: re-running a sweep with a
# different launcher, job count or resume flag continues the same sweep folder.
_NOT_THE_SWEEP = re.compile(r"^[+~]*(hydra[./]|resume=|paths\.log_dir=)")


def sweep_name(overrides: list[str]) -> str:
    """The multirun folder name: the command's own overrides (sorted), so re-running the same
    command finds its folder and resumes, while different sweeps never share one.
    """
    # Hydra resolves hydra.sweep.dir first in the sweeper, with the command's overrides, then again
    # in every job with that job's own overrides. Pin the first answer for this process and the
    # launcher's workers (they inherit the environment) so all jobs land in one sweep folder.
    if "DLS_SWEEP_NAME" not in os.environ:
        kept = sorted(o for o in overrides if not _NOT_THE_SWEEP.match(o))
        os.environ["DLS_SWEEP_NAME"] = _slug(" ".join(kept), 80) if kept else "default"
        os.environ["DLS_SWEEP_OVERRIDES"] = json.dumps(list(overrides))
    return os.environ["DLS_SWEEP_NAME"]


def job_dirname(num: int, overrides: list[str]) -> str:
    """A job's folder inside a sweep: its number and what sets it apart from the command's
    common overrides (``3_model=mlp,norm=layernorm``), hashed when very long.
    """
    common = {o.lower() for o in json.loads(os.environ.get("DLS_SWEEP_OVERRIDES", "[]"))}
    own = ",".join(o for o in overrides if o.lower() not in common and not _NOT_THE_SWEEP.match(o))
    return _slug(f"{num}_{own}" if own else str(num), 120)


def cpu_precision() -> str:
    """Lightning's precision for a CPU recipe: bfloat16 autocast where the CPU computes bfloat16
    natively (AVX-512 BF16 or AMX), full fp32 elsewhere, where bfloat16 would be emulated and slower.
    On this project's AMD EPYC it shortens the nanoGPT-size GPT's step to 0.70x at 2 threads, at the
    same loss (README, "The GPT against nanoGPT's own train.py")."""
    return "bf16-mixed" if torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported() else "32-true"


def override(key: str, value: object) -> str:
    """The command-line override that sets ``key`` to ``value`` (None as ``null``): how a config
    hands one of its values to a run it starts (``trained_first.<experiment>``)."""
    return f"{key}={'null' if value is None else value}"


def register_resolvers() -> None:
    """Make ``${dls.*:}`` interpolations available to every config (idempotent)."""
    for name, fn in {"dls.root": lambda: str(ROOT), "dls.wandb_offline": wandb_offline,
                     "dls.job_name": job_name, "dls.sweep_group": sweep_group,
                     "dls.ratio": lambda a, b: max(1, round(float(a) / float(b))),
                     "dls.sweep_name": sweep_name, "dls.job_dirname": job_dirname,
                     "dls.sweep_jobs": sweep_jobs, "dls.cpu_precision": cpu_precision, "dls.help": help_text,
                     "dls.override": override}.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
