"""A checkpoint at the moment a run is interrupted, so that no step since the last one is lost."""

from pathlib import Path

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException


def interruption(error: BaseException) -> str | None:
    """What interrupted the run (Ctrl-C, SIGTERM), or None for an error. Lightning turns Ctrl-C into
    ``SystemExit(1)`` raised while handling the ``KeyboardInterrupt``, SIGTERM into ``SIGTERMException``."""
    if isinstance(error, SIGTERMException):
        return "SIGTERM"
    if isinstance(error, KeyboardInterrupt) or isinstance(error.__context__, KeyboardInterrupt):
        return "Ctrl-C (SIGINT)"
    return None


class CheckpointOnInterrupt(L.Callback):
    """Saves ``<dirpath>/interrupted.ckpt`` when Ctrl-C or SIGTERM (what SLURM and other schedulers
    send before they kill a job) stops the run, and removes it once fitting ends normally.

    Lightning's ``OnExceptionCheckpoint`` saves the same file, but its presence also makes every
    ``fit`` without a ``ckpt_path`` resume from the newest checkpoint it finds, which would turn
    ``resume=false`` (recompute a sweep's jobs in their folders) into a resume.
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.path = Path(dirpath) / "interrupted.ckpt"

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if interruption(exception):
            trainer.save_checkpoint(self.path, weights_only=False)  # all of it: a run resumes from it

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.path.unlink(missing_ok=True)
