"""Masked-language-model pre-training (BERT): predict randomly masked tokens from both sides."""

import torch

from dlstudies.config.errors import ConfigError
from dlstudies.data.tokens import IGNORE
from dlstudies.tasks.language_model import LanguageModel

Batch = tuple[torch.Tensor, torch.Tensor]


def mask_tokens(tokens: torch.Tensor, rate: float, vocab_size: int, mask_id: int,
                generator: torch.Generator | None = None) -> Batch:
    """BERT's corruption of a batch of ids (B, T), ``IGNORE`` at padding: ``rate`` of the real
    tokens (rounded, at least one) are picked at random; of those 80% become ``mask_id``, 10% a
    random token, 10% stay. Returns (inputs, targets): targets hold the picked tokens, ``IGNORE``
    elsewhere. Draws come from ``generator`` (a CPU generator, for fixed masks) or the global RNG.
    """
    def draw(shape: torch.Size) -> torch.Tensor:
        if generator is None:
            return torch.rand(shape, device=tokens.device)
        return torch.rand(shape, generator=generator).to(tokens.device)

    real = tokens != IGNORE
    k = max(1, round(rate * int(real.sum())))
    scores = draw(tokens.shape).masked_fill(~real, 2.0)  # padding sorts after every real token
    picked = torch.zeros(tokens.numel(), dtype=torch.bool, device=tokens.device)
    picked[scores.flatten().topk(k, largest=False).indices] = True
    picked = picked.view_as(tokens)
    kind = draw(tokens.shape)
    random_ids = (draw(tokens.shape) * vocab_size).long().clamp_max(vocab_size - 1)
    inputs = torch.where(picked & (kind < 0.8), mask_id, tokens)
    inputs = torch.where(picked & (kind >= 0.8) & (kind < 0.9), random_ids, inputs)
    return inputs, tokens.masked_fill(~picked, IGNORE)


class MaskedLanguageModel(LanguageModel):
    """Trains a ``BertMaskedLM`` net to predict masked tokens of any character or word corpus.

    Batches are the corpus's own: line items (names) become their characters, boundaries dropped
    and padding kept as ``IGNORE``; stream windows are taken whole. Training draws fresh masks
    every batch; validation and test draw them from ``eval_mask_seed`` and the batch number, so
    every run is scored on the same masked positions (given the same ``eval_batch_size``). Loss,
    perplexity, accuracy (and bits per character) count the picked positions only.
    """

    def __init__(self, net, vocab, mask_rate: float = 0.15, eval_mask_seed: int = 0, **task_kwargs) -> None:
        if not 0 < mask_rate < 1:
            raise ConfigError(f"model.mask_rate={mask_rate} is not allowed; it must be in (0, 1)")
        super().__init__(net, vocab, **task_kwargs)
        self.mask_rate, self.eval_mask_seed = mask_rate, eval_mask_seed
        self.mask_text = "_" if self.separator == "" else "<mask>"

    def items(self, batch: Batch) -> torch.Tensor:
        """The token ids (B, T) of a batch's items, ``IGNORE`` at padding."""
        x, y = batch
        if not self.lines:
            return x
        return x[:, 1:].masked_fill(y[:, 1:] == IGNORE, IGNORE)  # x[:, 0] is the start boundary

    def masked(self, batch: Batch, batch_idx: int | None = None) -> Batch:
        """(inputs, targets) of the batch's items: fresh masks, or fixed ones given ``batch_idx``."""
        generator = None if batch_idx is None else torch.Generator().manual_seed(
            self.eval_mask_seed * 1_000_003 + batch_idx)
        return mask_tokens(self.items(batch), self.mask_rate, len(self.vocab), self.net.mask_id, generator)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return super().training_step(self.masked(batch), batch_idx)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        super().validation_step(self.masked(batch, batch_idx), batch_idx)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        super().test_step(self.masked(batch, batch_idx), batch_idx)

    @torch.no_grad()
    def fill_in(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs`` (B, T) with every ``<mask>`` replaced by the most likely token."""
        was_training = self.net.training
        self.net.eval()
        predicted = self.net(inputs.to(self.device)).argmax(-1).cpu()
        self.net.train(was_training)
        return torch.where(inputs == self.net.mask_id, predicted, inputs)

    def text(self, ids: torch.Tensor) -> str:
        """Ids as text, ``<mask>`` shown as ``mask_text``, padding dropped."""
        return self.separator.join(self.mask_text if i == self.net.mask_id else self.vocab[i]
                                   for i in ids.tolist() if i != IGNORE)

    def sample(self, n: int = 10, prompt: str = "", seed: int | None = None, **generation) -> list[str]:
        """Masked texts filled in, as ``masked -> filled``: the ``prompt``, with ``_`` (characters)
        or ``<mask>`` (words) where to fill in; without one, ``n`` test (else validation) items of
        the attached data, ``mask_rate`` of each one's tokens (at least one) masked, drawn from
        ``seed``. ``generation`` (temperature, top_k, ...) belongs to causal sampling: unused."""
        if prompt:
            stoi = {token: i for i, token in enumerate(self.vocab)} | {self.mask_text: self.net.mask_id}
            tokens = prompt.split() if self.separator == " " else list(prompt)
            unknown = [t for t in tokens if t not in stoi]
            if unknown:
                raise ValueError(f"prompt token(s) {unknown} are not in the vocabulary")
            inputs = torch.tensor([[stoi[t] for t in tokens]])
        else:
            datamodule = self.trainer.datamodule
            batch = next(iter(datamodule.test_dataloader() or datamodule.val_dataloader()))
            inputs = self.items(batch)[:n].clone()
            generator = torch.Generator().manual_seed(seed or 0)
            for row in inputs:
                real = (row != IGNORE).nonzero().flatten()
                k = max(1, round(self.mask_rate * len(real)))
                row[real[torch.randperm(len(real), generator=generator)[:k]]] = self.net.mask_id
        return [f"{self.text(masked)} -> {self.text(filled)}"
                for masked, filled in zip(inputs, self.fill_in(inputs))]
