"""A progress bar that counts what a step-based run is measured in: optimizer steps."""

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar


class StepProgressBar(RichProgressBar):
    """Lightning's rich progress bar, but for runs with ``max_steps`` one training bar of steps out
    of ``max_steps`` across epochs, where Lightning's counts the batches of each epoch against
    ``max_epochs`` (``Epoch 6/-2`` when that is -1). Epoch-based runs keep Lightning's bar."""

    def _by_steps(self) -> bool:
        return self.trainer.max_steps > 0

    @property
    def total_train_batches(self) -> int | float:
        return self.trainer.max_steps if self._by_steps() else super().total_train_batches

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._by_steps() or self.train_progress_bar_id is None:  # the step bar is made once
            super().on_train_epoch_start(trainer, pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        # Lightning draws the bar at batch_idx + 1: make that the steps taken.
        position = trainer.global_step - 1 if self._by_steps() else batch_idx
        super().on_train_batch_end(trainer, pl_module, outputs, batch, position)

    def _get_train_description(self, current_epoch: int) -> str:  # Lightning's name for the label
        if not self._by_steps():
            return super()._get_train_description(current_epoch)
        return f"{'Steps':{len(self.validation_description)}}"
