"""Causal language modelling: next-token cross-entropy for any net mapping (B, T) -> (B, T, V)."""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn
from tokenizers import Tokenizer
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from dlstudies.data.bpe import END, characters_per_token, read_tokenizer, vocabulary
from dlstudies.data.tokens import IGNORE
from dlstudies.generation.generate import generate
from dlstudies.hub import hf_checkpoint
from dlstudies.models.gpt2 import gpt2_options, load_gpt2
from dlstudies.models.transformer import TransformerLanguageModel
from dlstudies.tasks.base import Task


class LanguageModel(Task):
    """Trains ``net`` on next-token prediction; reports loss (nats/token), perplexity, bits per
    character (character and BPE tokens) and top-1 accuracy, and samples text.

    ``vocab`` maps ids to tokens; ``lines`` says items are lines that start and end with a
    boundary token (names); ``separator`` joins tokens ("" for characters, " " for words).
    ``tokenizer``: a byte-level BPE tokenizer (its tokenizer.json text) that turns prompts into ids
    and ids into text, whose ``<|endoftext|>`` is the boundary (else token 0 is). ``compile``
    wraps the net's forward in ``torch.compile`` (in place, so parameter names and checkpoints are
    unchanged). ``pretrained``: ``hf:<name or folder>``, a GPT-2-family checkpoint whose weights
    the net (built to its sizes, ``dlstudies.hub.use_pretrained``) starts from; they are loaded
    when fitting starts, so a fine-tuned checkpoint loads without them.
    """

    reads = ("text",)
    STUDY_METRICS = ("best/val/loss", "val/acc", "test/loss", "test/ppl", "test/bpc", "test/acc")

    def __init__(self, net: nn.Module, vocab: Sequence[str], lines: bool = True, separator: str = "",
                 tokenizer: str | None = None, pretrained: str | None = None, compile: bool = False,
                 **task_kwargs) -> None:
        super().__init__(net, **task_kwargs)
        self.pretrained = pretrained
        if compile:
            self.net.compile()
        self.vocab, self.lines, self.separator = list(vocab), lines, separator
        self.tokenizer = None if tokenizer is None else Tokenizer.from_str(tokenizer)
        self.boundary = 0 if self.tokenizer is None else self.tokenizer.token_to_id(END)
        # Characters each token id stands for, so that loss per character compares runs of any
        # tokens on the same text: one for characters, none known for words.
        characters = (characters_per_token(self.tokenizer) if self.tokenizer else
                      [1] * len(self.vocab) if separator == "" else None)
        self.register_buffer("characters", None if characters is None else torch.tensor(characters),
                             persistent=False)
        stages = ("val", "test")
        self.eval_loss = nn.ModuleDict({s: MeanMetric() for s in stages})
        self.eval_bpc = nn.ModuleDict({s: MeanMetric() for s in stages})
        self.eval_acc = nn.ModuleDict({s: MulticlassAccuracy(len(self.vocab), average="micro",
                                                             ignore_index=IGNORE) for s in stages})

    @classmethod
    def from_pretrained(cls, spec: str, key: str = "ckpt_path") -> "LanguageModel":
        """The GPT-2-family checkpoint ``hf:<name or folder>`` as a GPT with its weights and
        tokenizer, in eval mode, ready to sample (``key`` names the setting in error lines)."""
        checkpoint = hf_checkpoint(spec, key)
        options = gpt2_options(checkpoint.config, checkpoint.where)
        tokenizer = read_tokenizer(checkpoint.tokenizer, key)
        net = TransformerLanguageModel(tokenizer.get_vocab_size(), **instantiate(options))
        load_gpt2(net, checkpoint.weights(), checkpoint.where)
        return cls(net, vocabulary(tokenizer), lines=False, tokenizer=tokenizer.to_str(),
                   optimizer=torch.optim.AdamW).eval()

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.pretrained:
            checkpoint = hf_checkpoint(self.pretrained, "model.pretrained")
            load_gpt2(self.net, checkpoint.weights(), checkpoint.where)

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
        real = y != IGNORE
        nats = F.cross_entropy(logits, y, ignore_index=IGNORE, reduction="sum")
        tokens = real.sum()
        self.eval_loss[stage].update(nats / tokens, weight=tokens)  # token-weighted mean over the split
        if self.characters is not None:
            characters = self.characters[y[real]].sum()
            self.eval_bpc[stage].update(nats / characters / math.log(2), weight=characters)
        self.eval_acc[stage].update(logits, y)

    def _log_eval(self, stage: str) -> None:
        loss = self.eval_loss[stage].compute()
        metrics = {f"{stage}/loss": loss, f"{stage}/ppl": loss.exp(),
                   f"{stage}/acc": self.eval_acc[stage].compute()}
        if self.characters is not None:
            metrics[f"{stage}/bpc"] = self.eval_bpc[stage].compute()
        self.log_dict(metrics, prog_bar=stage == "val", sync_dist=True)  # already global: no-op average
        for metric in (self.eval_loss, self.eval_bpc, self.eval_acc):
            metric[stage].reset()

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val")

    def on_test_epoch_end(self) -> None:
        self._log_eval("test")

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``; a one-line error for characters or words outside the vocabulary."""
        if self.tokenizer is not None:
            return self.tokenizer.encode(text).ids
        stoi = {token: i for i, token in enumerate(self.vocab)}
        tokens = text.split() if self.separator == " " else list(text)
        unknown = [t for t in tokens if t not in stoi]
        if unknown:
            raise ValueError(f"prompt token(s) {unknown} are not in the vocabulary")
        return [stoi[t] for t in tokens]

    def decode(self, ids: list[int]) -> str:
        """The text of ``ids``."""
        if self.tokenizer is not None:
            return self.tokenizer.decode(ids)
        return self.separator.join(self.vocab[i] for i in ids)

    def sample(self, n: int = 10, prompt: str = "", max_new_tokens: int | None = None,
               temperature: float = 1.0, top_k: int | None = None, seed: int | None = None,
               use_cache: bool = True) -> list[str]:
        """``n`` generated texts: whole lines (names) for line corpora, else 200-token continuations.
        ``use_cache``: through the net's key-value cache, where it has one (the same texts, faster).
        ``sampled_tokens`` then holds the number of tokens generated (for speed reports)."""
        if temperature < 0:
            raise ValueError(f"temperature={temperature} is not allowed; it must be >= 0 (0: the most likely token)")
        prompt_ids = self.encode(prompt)
        start = [self.boundary] * self.lines + prompt_ids or [self.boundary]
        idx = torch.tensor([start] * n, dtype=torch.long, device=self.device)
        generator = None if seed is None else torch.Generator(self.device).manual_seed(seed)
        was_training = self.net.training
        self.net.eval()
        out = generate(self.net, idx, max_new_tokens or (100 if self.lines else 200), temperature, top_k,
                       stop_token=self.boundary if self.lines else None, generator=generator, use_cache=use_cache)
        self.net.train(was_training)
        texts, self.sampled_tokens = [], 0
        for row in out[:, len(start) :].tolist():
            end = row.index(self.boundary) if self.lines and self.boundary in row else len(row)
            self.sampled_tokens += min(end + 1, len(row))  # the boundary that ends a line counts
            texts.append(self.decode(prompt_ids + row[:end]))
        return texts
