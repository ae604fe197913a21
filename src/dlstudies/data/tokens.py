"""Token data for language models: ids with a vocabulary, one stream per split or rows of items."""

import torch
from torch.utils.data import DataLoader

from dlstudies.config.errors import ConfigError
from dlstudies.data.base import TensorDataModule
from dlstudies.data.tensors import window_loader

IGNORE = -1  # target id the loss skips: the padding after an item's end


class TokenDataModule(TensorDataModule):
    """Token ids and the vocabulary they index, split by ``val_fraction``/``test_fraction``.

    ``stream=True``: each split is one token stream, ``splits[name] = (ids,)``, read as windows of
    ``block_size`` tokens (random windows for training, consecutive blocks for evaluation).
    ``stream=False``: each split holds rows of items, e.g. ``(x, y)`` with ``IGNORE`` targets as
    padding. ``separator`` joins tokens back into text ("" for characters, " " for words).
    """

    kind = "text"
    separator = ""

    def __init__(self, block_size: int, batch_size: int, eval_batch_size: int | None,
                 val_fraction: float, test_fraction: float, seed: int, stream: bool = True) -> None:
        super().__init__(batch_size, eval_batch_size, seed)
        self.block_size, self.stream = block_size, stream
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.vocab: list[str] = []

    def set_streams(self, streams: dict[str, torch.Tensor]) -> None:
        """Keep each split's stream that holds at least one window; a training stream too short
        for one is a one-line error."""
        n_train = len(streams.get("train", ()))
        if n_train <= self.block_size:
            raise ConfigError(f"the training split has {n_train} tokens: too few for "
                              f"data.block_size={self.block_size}")
        self.splits = {name: (ids,) for name, ids in streams.items() if len(ids) > self.block_size}

    def loader(self, tensors: tuple[torch.Tensor, ...], batch_size: int, shuffle: bool) -> DataLoader:
        if not self.stream:
            return super().loader(tensors, batch_size, shuffle)
        return window_loader(tensors[0], self.block_size, batch_size, shuffle, seed=self.seed)

    def model_kwargs(self) -> dict:
        """What the model needs from the data, as plain data (stored in checkpoints)."""
        return {"net": {"vocab_size": len(self.vocab)}, "vocab": self.vocab, "lines": not self.stream,
                "separator": self.separator}


def trim_padding(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """A batch of ``IGNORE``-padded rows (inputs first) without the columns past its longest row,
    which are all padding: on the CPU, before the copy to the device, at no cost. Tensors of
    one value per row (sequence labels) stay as they are."""
    length = int((batch[0] != IGNORE).sum(1).max())
    return tuple(t[:, :length] if t.dim() > 1 else t for t in batch)
