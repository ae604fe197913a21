"""Causal language modelling: next-token cross-entropy for any net mapping (B, T) -> (B, T, V)."""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from dlstudies.data.tokens import IGNORE
from dlstudies.generation.generate import generate
from dlstudies.tasks.base import Task


class LanguageModel(Task):
    """Trains ``net`` on next-token prediction; reports loss (nats/token), perplexity, bits per
    character (character corpora) and top-1 accuracy, and samples text.

    ``vocab`` maps ids to tokens; ``lines`` says items are lines that start and end with token 0
    (names); ``separator`` joins tokens ("" for characters, " " for words). ``compile`` wraps the
    net's forward in ``torch.compile`` (in place, so parameter names and checkpoints are unchanged).
    """

    STUDY_METRICS = ("best/val/loss", "val/acc", "test/loss", "test/ppl", "test/bpc", "test/acc")

    def __init__(self, net: nn.Module, vocab: Sequence[str], lines: bool = True, separator: str = "",
                 compile: bool = False, **task_kwargs) -> None:
        super().__init__(net, **task_kwargs)
        if compile:
            self.net.compile()
        self.vocab, self.lines, self.separator = list(vocab), lines, separator
        stages = ("val", "test")
        self.eval_loss = nn.ModuleDict({s: MeanMetric() for s in stages})
        self.eval_acc = nn.ModuleDict({s: MulticlassAccuracy(len(self.vocab), average="micro",
                                                             ignore_index=IGNORE) for s in stages})

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE,
                               label_smoothing=self.label_smoothing)
        if self.is_logging_step():
            self.log("train/loss", loss, prog_bar=True)
        return self.regularized(loss)

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        x, y = batch
        logits = self.net(x).flatten(0, 1)
        y = y.flatten()
        tokens = (y != IGNORE).sum()
        loss = F.cross_entropy(logits, y, ignore_index=IGNORE, reduction="sum") / tokens
        self.eval_loss[stage].update(loss, weight=tokens)  # token-weighted mean over the split
        self.eval_acc[stage].update(logits, y)

    def _log_eval(self, stage: str) -> None:
        loss = self.eval_loss[stage].compute()
        metrics = {f"{stage}/loss": loss, f"{stage}/ppl": loss.exp(),
                   f"{stage}/acc": self.eval_acc[stage].compute()}
        if self.separator == "":
            metrics[f"{stage}/bpc"] = loss / math.log(2)
        self.log_dict(metrics, prog_bar=stage == "val", sync_dist=True)  # already global: no-op average
        self.eval_loss[stage].reset()
        self.eval_acc[stage].reset()

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val")

    def on_test_epoch_end(self) -> None:
        self._log_eval("test")

    def sample(self, n: int = 10, prompt: str = "", max_new_tokens: int | None = None,
               temperature: float = 1.0, top_k: int | None = None, seed: int | None = None) -> list[str]:
        """``n`` generated texts: whole lines (names) for line corpora, else 200-token continuations."""
        if temperature < 0:
            raise ValueError(f"temperature={temperature} is not allowed; it must be >= 0 (0: the most likely token)")
        stoi = {token: i for i, token in enumerate(self.vocab)}
        tokens = prompt.split() if self.separator == " " else list(prompt)
        unknown = [t for t in tokens if t not in stoi]
        if unknown:
            raise ValueError(f"prompt token(s) {unknown} are not in the vocabulary")
        start = [0] * self.lines + [stoi[t] for t in tokens] or [0]
        idx = torch.tensor([start] * n, dtype=torch.long, device=self.device)
        generator = None if seed is None else torch.Generator(self.device).manual_seed(seed)
        was_training = self.net.training
        self.net.eval()
        out = generate(self.net, idx, max_new_tokens or (100 if self.lines else 200), temperature,
                       top_k, stop_token=0 if self.lines else None, generator=generator)
        self.net.train(was_training)
        texts = []
        for row in out[:, len(start) :].tolist():
            if self.lines and 0 in row:
                row = row[: row.index(0)]
            texts.append(self.separator.join(tokens + [self.vocab[i] for i in row]))
        return texts
