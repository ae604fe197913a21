"""Put the run's resolved config and the data's vocabulary into every checkpoint as plain data."""

import lightning as L


class CheckpointMetadata(L.Callback):
    """Stores ``config`` and the datamodule's ``model_kwargs()`` under ``checkpoint["dlstudies"]``.

    Plain dicts, lists and strings only, so a checkpoint loads with ``torch.load(weights_only=True)``
    and the evaluate/sample commands rebuild the model without unpickling code.
    """

    def __init__(self, config: dict) -> None:
        self.config = config

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict) -> None:
        checkpoint["dlstudies"] = {"config": self.config,
                                   "model_kwargs": trainer.datamodule.model_kwargs()}
