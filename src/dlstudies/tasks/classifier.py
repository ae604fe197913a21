"""Classification: cross-entropy for any net mapping inputs to class logits (B, C)."""

import math
import re
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from dlstudies.models.ensemble import Ensemble
from dlstudies.tasks.base import Task

EVAL_STAGES = ("val", "trainset", "test")


class Classifier(Task):
    """Trains ``net`` with cross-entropy; reports loss and accuracy, per-class accuracy at test.

    Metrics: ``train/loss`` and ``train/acc`` per batch; at each validation ``val/*`` and
    ``trainset/*`` (the training split evaluated like the validation split, so studies can
    compare training losses); ``test/*`` plus ``test/class_acc/<class>`` at the end. Subclasses
    add metrics to ``eval_metrics`` and say what an example is (``logits_and_labels``).

    ``regularizer.ensemble = k > 1`` trains k members (different random initialisations) side by
    side; evaluation averages their predicted probabilities, and ``test/member_acc`` is the mean
    accuracy of the members alone, for comparison.

    ``pixels`` (image data): how the inputs were made from intensities in [0, 1] (the data's
    ``model_kwargs``), kept so that a trained classifier can judge generated images.
    """

    reads = ("labelled arrays",)
    STUDY_METRICS = ("trainset/loss", "trainset/acc", "best/val/loss", "val/acc", "test/loss", "test/acc",
                     "test/err", "trainset/err")

    def __init__(self, net: nn.Module, class_names: Sequence[str], pixels: Mapping | None = None,
                 **task_kwargs) -> None:
        k = int((task_kwargs.get("regularizer") or {}).get("ensemble", 1))
        super().__init__(Ensemble(net, k) if k > 1 else net, **task_kwargs)
        self.class_names, self.ensemble, self.pixels = list(class_names), k, pixels
        c = len(self.class_names)
        self.eval_loss = nn.ModuleDict({s: MeanMetric() for s in EVAL_STAGES})
        self.eval_metrics = nn.ModuleDict(
            {s: MetricCollection({"acc": MulticlassAccuracy(c, average="micro")}) for s in EVAL_STAGES})
        self.class_acc = MulticlassAccuracy(c, average=None)
        self.member_acc = MeanMetric()

    def log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Log class probabilities (B, C); an ensemble's (k, B, C) logits give those of the
        members' mean probabilities."""
        if self.ensemble > 1:
            return logits.log_softmax(-1).logsumexp(0) - math.log(self.ensemble)
        return logits.log_softmax(-1)

    def logits_and_labels(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, C) (an ensemble's (k, B, C)) and labels (B,) of a batch's examples."""
        x, y = batch
        return self.net(x), y

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits, y = self.logits_and_labels(batch)
        members = logits if self.ensemble > 1 else logits[None]
        losses = torch.stack([F.cross_entropy(m, y, label_smoothing=self.label_smoothing) for m in members])
        if self.is_logging_step():
            accuracy = (members.mean(0).argmax(-1) == y).float().mean()
            self.log_dict({"train/loss": losses.mean(), "train/acc": accuracy}, prog_bar=True)
        return self.regularized(losses.sum())  # the sum: each member's own gradient

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        logits, y = self.logits_and_labels(batch)
        log_probs = self.log_probs(logits)
        if stage == "test" and self.ensemble > 1:
            self.member_acc.update((logits.argmax(-1) == y).float().mean(), weight=len(y))
        self.eval_loss[stage].update(F.nll_loss(log_probs, y), weight=len(y))
        self.eval_metrics[stage].update(log_probs, y)
        if stage == "test":
            self.class_acc.update(log_probs, y)

    def _log_eval(self, stage: str) -> dict[str, torch.Tensor]:
        metrics = {f"{stage}/loss": self.eval_loss[stage].compute()}
        metrics |= {f"{stage}/{name}": value for name, value in self.eval_metrics[stage].compute().items()}
        self.eval_loss[stage].reset()
        self.eval_metrics[stage].reset()
        return metrics

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int,
                        dataloader_idx: int = 0) -> None:
        self._evaluate(batch, "val" if dataloader_idx == 0 else "trainset")

    def on_validation_epoch_end(self) -> None:
        metrics = self._log_eval("val")
        if self.eval_loss["trainset"].update_called:
            metrics |= self._log_eval("trainset")
        self.log_dict(metrics, prog_bar=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        metrics = self._log_eval("test")
        for name, accuracy in zip(self.class_names, self.class_acc.compute()):
            metrics[f"test/class_acc/{re.sub(r'[^A-Za-z0-9]+', '_', name)}"] = accuracy
        self.class_acc.reset()
        if self.ensemble > 1:
            metrics["test/member_acc"] = self.member_acc.compute()
            self.member_acc.reset()
        self.log_dict(metrics)
