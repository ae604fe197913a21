"""What every task shares: the wrapped net, its init, the optimizer and schedule, the L2 penalty."""

from collections.abc import Callable, Mapping

import lightning as L
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torch import nn

OptimizerFactory = Callable[..., torch.optim.Optimizer]


class Task(L.LightningModule):
    """Wraps any ``nn.Module`` ``net``; optimizer and scheduler arrive as Hydra partials.

    ``regularizer`` is the plain mapping of the ``regularizer`` config group; ``l2`` adds the
    explicit penalty lambda * sum(w^2) over weight matrices to the loss, which differs from the
    decoupled ``weight_decay`` of AdamW (both are available).

    ``reads`` names the kinds of data (a data module's ``kind``) whose batches the task trains on;
    a model option given any other data stops before anything is built.

    ``STUDY_METRICS`` names the ``summary.json`` metrics a study's report may read: the report's
    table has one column for each (NaN where a job has none), and no others from the summary. An
    ``<split>/err`` the run did not record is 1 - ``<split>/acc``. ``TRAINED_FIRST`` names the
    arguments that take a checkpoint, which a config may give as an experiment's name instead:
    train.py trains that recipe first (once, shared) and passes its checkpoint
    (``dlstudies.prerequisites``).
    """

    reads: tuple[str, ...]
    STUDY_METRICS: tuple[str, ...] = ()
    TRAINED_FIRST: tuple[str, ...] = ()

    def __init__(self, net: nn.Module, optimizer: OptimizerFactory, scheduler: Callable | None = None,
                 regularizer: Mapping | None = None, init: Callable[[nn.Module], None] | None = None) -> None:
        super().__init__()
        self.net = net
        if init is not None:
            init(self.net)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        regularizer = regularizer or {}
        self.l2 = float(regularizer.get("l2", 0.0))
        self.label_smoothing = float(regularizer.get("label_smoothing", 0.0))

    def __setattr__(self, name: str, value: object) -> None:
        """``nn.Module.__setattr__`` but for ``_current_fx_name``, a hook's name (a string) that
        Lightning sets about 40 times a training step: the module's checks for parameters, modules
        and buffers cost ~2.5 us each time, 4% of a small convnet's step on CPU."""
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @property
    def n_params(self) -> int:
        """Number of trainable parameters of the wrapped net."""
        return sum(p.numel() for p in self.net.parameters() if p.requires_grad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def is_logging_step(self) -> bool:
        """Whether loggers record this training step: every ``log_every_n_steps`` and the last.

        Training steps call ``self.log`` only then: on CPU each call costs about a millisecond
        (Lightning moves its result store to the value's device every time), 3% of a small
        Transformer's step and far more of a small MLP's.
        """
        trainer, step = self.trainer, self.global_step + 1
        last = step == trainer.max_steps or (trainer.is_last_batch and self.current_epoch + 1 == trainer.max_epochs)
        return step % max(trainer.log_every_n_steps, 1) == 0 or last

    def _weights(self) -> list[nn.Parameter]:
        """Matrices and embeddings: what weight decay and the L2 penalty act on (not biases, norms)."""
        return [p for p in self.net.parameters() if p.requires_grad and p.ndim >= 2]

    def l2_penalty(self) -> torch.Tensor:
        """lambda * sum(w^2) over the weights; its gradient is 2 * lambda * w."""
        return self.l2 * sum(w.pow(2).sum() for w in self._weights())

    def regularized(self, loss: torch.Tensor) -> torch.Tensor:
        """The training objective: the data loss plus the explicit L2 penalty when lambda > 0."""
        return loss + self.l2_penalty() if self.l2 > 0 else loss

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        """Clip as Lightning does, and also under bf16-mixed with a fused optimizer.

        Lightning refuses to clip whenever a fused optimizer meets mixed precision, because fp16's
        scaler would leave the gradients scaled (Lightning-AI/pytorch-lightning#21435). bf16 has no
        scaler, so its gradients are true and are clipped here directly.
        """
        plugin = self.trainer.precision_plugin
        if not (gradient_clip_val and isinstance(plugin, MixedPrecision) and plugin.scaler is None):
            return super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if gradient_clip_algorithm == "value":
            torch.nn.utils.clip_grad_value_(params, gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)

    def configure_optimizers(self) -> dict:
        weights = {id(p) for p in self._weights()}
        others = [p for p in self.net.parameters() if p.requires_grad and id(p) not in weights]
        optimizer = self.optimizer_factory(
            [{"params": self._weights()}, {"params": others, "weight_decay": 0.0}])
        config: dict = {"optimizer": optimizer}
        if self.scheduler_factory is not None:
            total = int(self.trainer.estimated_stepping_batches)
            config["lr_scheduler"] = {"scheduler": self.scheduler_factory(optimizer, total_steps=total),
                                      "interval": "step"}
        return config
