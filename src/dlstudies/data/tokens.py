"""Token data for language models: ids with a vocabulary, one stream per split or rows of items;
the tokens are the corpus's own (characters, words) or byte-level BPE (``tokenizer``)."""

import hashlib
import json
from pathlib import Path

import torch
from tokenizers import Tokenizer
from torch.utils.data import DataLoader

from dlstudies.config.errors import ConfigError
from dlstudies.data.base import TensorDataModule
from dlstudies.data.bpe import END, MIN_VOCAB, read_tokenizer, train_bpe, vocabulary
from dlstudies.data.tensors import window_loader
from dlstudies.files import atomic_path, write_text

IGNORE = -1  # target id the loss skips: the padding after an item's end


def item_rows(items: list[list[int]], boundary: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows x = [boundary] + ids, y = ids + [boundary], cut and padded to ``length`` (y with IGNORE)."""
    x = torch.zeros(len(items), length, dtype=torch.long)
    y = torch.full((len(items), length), IGNORE, dtype=torch.long)
    for row, item in enumerate(items):
        ids = item[: length - 1] + [boundary]
        x[row, : len(ids)] = torch.tensor([boundary] + ids[:-1], dtype=torch.long)
        y[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return x, y


class TokenDataModule(TensorDataModule):
    """Token ids and the vocabulary they index, split by ``val_fraction``/``test_fraction``.

    ``stream=True``: each split is one token stream, ``splits[name] = (ids,)``, read as windows of
    ``block_size`` tokens (random windows for training, consecutive blocks for evaluation).
    ``stream=False``: each split holds rows of items, e.g. ``(x, y)`` with ``IGNORE`` targets as
    padding. ``separator`` joins tokens back into text ("" for characters, " " for words).

    ``tokenizer``: None for the corpus's own tokens; ``bpe`` trains a byte-level BPE tokenizer of
    ``vocab_size`` tokens on the training split; a path reads a ``tokenizer.json``. BPE tokenizers
    and the tensors they give are cached under ``cache_dir``/bpe (None: not cached).
    """

    kind = "text"
    separator = ""

    def __init__(self, block_size: int, batch_size: int, eval_batch_size: int | None,
                 val_fraction: float, test_fraction: float, seed: int, stream: bool = True,
                 tokenizer: str | None = None, vocab_size: int = 1024, cache_dir: str | Path | None = None) -> None:
        super().__init__(batch_size, eval_batch_size, seed)
        if tokenizer == "bpe" and (not isinstance(vocab_size, int) or vocab_size < MIN_VOCAB):
            raise ConfigError(f"data.vocab_size={vocab_size} is not allowed; byte-level BPE needs at "
                              f"least {MIN_VOCAB} (256 bytes and {END})")
        if tokenizer not in (None, "bpe") and not Path(tokenizer).expanduser().is_file():
            raise ConfigError(f"data.tokenizer={tokenizer} is not allowed; use bpe (trained on the data) "
                              "or the path of a tokenizer.json")
        self.block_size, self.stream = block_size, stream
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.tokenizer, self.vocab_size = tokenizer, vocab_size
        self.cache_dir = None if cache_dir is None else Path(cache_dir).expanduser()
        self.vocab: list[str] = []
        self.tokenizer_json: str | None = None  # the BPE tokenizer, for the model (samples, bpc)

    def set_streams(self, streams: dict[str, torch.Tensor]) -> None:
        """Keep each split's stream that holds at least one window; a training stream too short
        for one is a one-line error."""
        n_train = len(streams.get("train", ()))
        if n_train <= self.block_size:
            raise ConfigError(f"the training split has {n_train} tokens: too few for "
                              f"data.block_size={self.block_size}")
        self.splits = {name: (ids,) for name, ids in streams.items() if len(ids) > self.block_size}

    def setup_bpe(self, parts: dict[str, list[str]]) -> None:
        """Tokenize each split's items (a stream: its one text; else its lines) with the BPE
        tokenizer, trained on the training items or read from ``tokenizer``; reuse the cached
        tokenizer and tensors when the texts and tokenizer settings are the same."""
        tokenizer_file, tensors_file = self._bpe_cache(parts)
        if tensors_file is not None and tensors_file.is_file() and tokenizer_file.is_file():
            tokenizer, splits = Tokenizer.from_file(str(tokenizer_file)), torch.load(tensors_file, weights_only=True)
        else:
            tokenizer = (train_bpe("\n".join(parts["train"]), self.vocab_size) if self.tokenizer == "bpe"
                         else read_tokenizer(self.tokenizer))
            splits = self._encode(parts, tokenizer)
            if tensors_file is not None:  # parallel jobs may build the same cache at once
                write_text(tokenizer_file, tokenizer.to_str())
                with atomic_path(tensors_file) as tmp:
                    torch.save(splits, tmp)
        self.vocab, self.tokenizer_json = vocabulary(tokenizer), tokenizer.to_str()
        if self.stream:
            self.set_streams({name: ids for name, (ids,) in splits.items()})
        else:
            self.splits = splits

    def _encode(self, parts: dict[str, list[str]], tokenizer: Tokenizer) -> dict[str, tuple[torch.Tensor, ...]]:
        """Each split's tensors: its stream of ids, or its line items as rows between END tokens."""
        if self.stream:
            return {name: (torch.tensor(tokenizer.encode(items[0]).ids, dtype=torch.long),)
                    for name, items in parts.items()}
        ids = {name: [e.ids for e in tokenizer.encode_batch(items)] for name, items in parts.items() if items}
        length = min(self.block_size, max(len(item) for items in ids.values() for item in items) + 1)
        return {name: item_rows(items, tokenizer.token_to_id(END), length) for name, items in ids.items()}

    def _bpe_cache(self, parts: dict[str, list[str]]) -> tuple[Path | None, Path | None]:
        """Where the tokenizer and the tensors are cached: files named by a hash of the split texts
        and every setting that changes them (None, None when caching is off)."""
        if self.cache_dir is None:
            return None, None
        settings = {"tokenizer": self.tokenizer if self.tokenizer == "bpe" else
                    hashlib.sha256(Path(self.tokenizer).expanduser().read_bytes()).hexdigest(),
                    "vocab_size": self.vocab_size if self.tokenizer == "bpe" else None,
                    "stream": self.stream, "block_size": None if self.stream else self.block_size}
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
        for name, items in sorted(parts.items()):
            digest.update(f"\0{name}\0{len(items)}".encode())
            for item in items:
                digest.update(item.encode() + b"\0")
        stem = self.cache_dir / "bpe" / digest.hexdigest()[:16]
        return stem.with_suffix(".tokenizer.json"), stem.with_suffix(".pt")

    def loader(self, tensors: tuple[torch.Tensor, ...], batch_size: int, shuffle: bool) -> DataLoader:
        if not self.stream:
            return super().loader(tensors, batch_size, shuffle)
        return window_loader(tensors[0], self.block_size, batch_size, shuffle, seed=self.seed)

    def model_kwargs(self) -> dict:
        """What the model needs from the data, as plain data (stored in checkpoints)."""
        kwargs = {"net": {"vocab_size": len(self.vocab)}, "vocab": self.vocab, "lines": not self.stream,
                  "separator": self.separator}
        return kwargs | ({"tokenizer": self.tokenizer_json} if self.tokenizer_json else {})


def trim_padding(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """A batch of ``IGNORE``-padded rows (inputs first) without the columns past its longest row,
    which are all padding: on the CPU, before the copy to the device, at no cost. Tensors of
    one value per row (sequence labels) stay as they are."""
    length = int((batch[0] != IGNORE).sum(1).max())
    return tuple(t[:, :length] if t.dim() > 1 else t for t in batch)
