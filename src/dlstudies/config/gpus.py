"""The GPUs this machine shows and the ones a trainer config asks for: the launcher config's
``n_jobs`` (``${dls.sweep_jobs:...}``) and launch.py's GPU claims read them."""

import os

import torch

from dlstudies.config.errors import ConfigError

# Test and simulation seam: DLS_SIMULATE_GPUS=G makes this process see G GPUs named 0..G-1
# (filtered by CUDA_VISIBLE_DEVICES like real ones) and train on CPU, so that GPU placement
# (claims, n_jobs, DDP device lists) runs and is tested on a machine without a GPU.
SIMULATE_GPUS = "DLS_SIMULATE_GPUS"


def visible_gpus() -> list[str]:
    """The GPUs this process may use, named as ``CUDA_VISIBLE_DEVICES`` names them (else 0..G-1);
    the i-th is torch's ``cuda:i``."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    names = [n.strip() for n in listed.split(",") if n.strip()] if listed is not None else None
    if os.environ.get(SIMULATE_GPUS):
        machine = [str(i) for i in range(int(os.environ[SIMULATE_GPUS]))]
        return machine if names is None else [n for n in names if n in machine]
    count = torch.cuda.device_count()
    return [str(i) for i in range(count)] if names is None else names[:count]


def gpu_request(accelerator: str, devices: object, n_visible: int) -> tuple[list[int], int] | None:
    """The GPUs (torch indices) a job may take and how many it needs, from Lightning's
    ``accelerator`` and ``devices`` (a count, -1/"auto" for all, or a list that pins them);
    None when it trains without a GPU."""
    if str(accelerator) not in ("auto", "gpu", "cuda") or n_visible == 0:
        return None
    try:
        parsed = devices
        if isinstance(devices, str):  # Lightning's string forms: "auto", "-1", "2", "0,1"
            text = devices.strip()
            parsed = -1 if text == "auto" else [int(d) for d in text.split(",") if d] if "," in text else int(text)
        if isinstance(parsed, int):
            candidates, count = list(range(n_visible)), n_visible if parsed == -1 else parsed
        else:
            candidates = [int(d) for d in parsed]
            count = len(candidates)
    except (TypeError, ValueError):
        raise ConfigError(f"trainer.devices={devices} is not allowed; it must be a count, -1, auto "
                          "or a list of GPU indices") from None
    return (candidates, count) if count > 0 else None  # 0 or below: Lightning rejects it in one line


def sweep_jobs(accelerator: str, devices: object, jobs_per_gpu: int = 1) -> int:
    """joblib's ``n_jobs`` on this machine: as many jobs as the visible GPUs hold at once when the
    trainer asks for GPUs, ``jobs_per_gpu`` on each (4 GPUs, 2 per job: 2; 1 GPU, 8 jobs per GPU:
    8), else -1, one per core. A ``jobs_per_gpu`` below 1 counts as 1 here; the job then stops on
    it in one line."""
    request = gpu_request(accelerator, devices, len(visible_gpus()))
    slots = jobs_per_gpu if isinstance(jobs_per_gpu, int) and jobs_per_gpu > 1 else 1
    return max(1, len(request[0]) * slots // request[1]) if request else -1
