"""Validate once more after the last training step, whatever the run's length."""

import lightning as L


def last_training_batch(trainer: L.Trainer) -> bool:
    """Whether the batch that just ended is the run's last: max_steps reached, or the last batch of
    the last of max_epochs."""
    steps_done = trainer.max_steps != -1 and trainer.global_step >= trainer.max_steps
    epochs_done = (trainer.max_epochs not in (None, -1) and trainer.is_last_batch
                   and trainer.current_epoch + 1 >= trainer.max_epochs)
    return steps_done or epochs_done


class ValidateAtEnd(L.Callback):
    """Stops the run at its last batch, because Lightning's loop validates a run that is asked to
    stop: a run whose length is not a multiple of ``val_check_interval`` still ends with ``val/*``
    metrics, a best checkpoint and a test of the best weights. A last step that validates anyway
    is validated once (the loop asks once per batch); as for any run asked to stop, Lightning also
    writes that step's training metrics to the loggers."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        if last_training_batch(trainer):
            trainer.should_stop = True
