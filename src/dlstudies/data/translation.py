"""Translation pairs as tensors: built-in numbers or dates (``data.source``), or a TSV file (``data.path``).

Pairs are tokenized once (characters, or words as ``data=words`` splits them), the splits cut
deterministically from ``seed``, and each side gets its own vocabulary from the training split:
``<pad>`` (id 0), ``<bos>``, ``<eos>``, ``<unk>``, then tokens by frequency. A split is two tensors:
sources (N, S) and targets ``<bos> tokens <eos>`` (N, T), right-padded with ``<pad>``; each batch
is cut to its own longest row before it reaches the model. The tensors are cached under
``cache_dir`` by a hash of every option that changes them, as ``data=words`` does.
"""

import hashlib
import json
import logging
from collections import Counter
from pathlib import Path

import torch

from dlstudies.config.errors import ConfigError
from dlstudies.data.base import TensorDataModule, split_by_fractions
from dlstudies.data.pair_sources import date_pairs, number_pairs, read_pairs
from dlstudies.data.words import tokenize
from dlstudies.files import write_torch

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
SOURCES, TOKENS = ("numbers", "dates"), ("word", "char")
log = logging.getLogger(__name__)


def split_tokens(text: str, tokens: str) -> list[str]:
    """The tokens of one sentence: its characters, or its lower-cased words and marks."""
    return list(text) if tokens == "char" else tokenize(text, lower=True, punctuation="split")


def build_vocab(sentences: list[list[str]]) -> list[str]:
    """The special tokens, then every token of ``sentences``, most frequent first (ties alphabetical)."""
    counts = Counter(token for sentence in sentences for token in sentence)
    return SPECIALS + sorted(counts, key=lambda t: (-counts[t], t))


def encode(sentences: list[list[str]], vocab: list[str], ends: bool) -> torch.Tensor:
    """(N, longest) ids, right-padded with PAD; ``ends`` wraps each in ``<bos>``/``<eos>``."""
    stoi = {token: i for i, token in enumerate(vocab)}
    rows = [[BOS] * ends + [stoi.get(t, UNK) for t in s] + [EOS] * ends for s in sentences]
    ids = torch.full((len(rows), max(map(len, rows))), PAD, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return ids


def trim(ids: torch.Tensor) -> torch.Tensor:
    """The columns up to the longest row of the batch (the rest is padding)."""
    return ids[:, : int((ids != PAD).sum(1).max())]


class TranslationDataModule(TensorDataModule):
    """Source/target pairs split into train/val/test tensors; batches are ``(src, tgt)``."""

    kind = "text pairs"

    def __init__(self, source: str = "numbers", path: str | None = None, tokens: str = "word",
                 num_pairs: int = 50000, max_number: int = 10**7, numbers_per_item: int | str = 1,
                 src_lang: str = "en", tgt_lang: str = "fr", tgt_locale: str = "fr", max_len: int | None = None,
                 batch_size: int = 64, eval_batch_size: int | None = None, val_fraction: float = 0.05,
                 test_fraction: float = 0.05, seed: int = 1337, cache_dir: str | None = None) -> None:
        if path is None and source not in SOURCES:
            raise ConfigError(f"data.source={source} is not allowed; use {', '.join(SOURCES)} or data.path=pairs.tsv")
        if tokens not in TOKENS:
            raise ConfigError(f"data.tokens={tokens} is not allowed; use {', '.join(TOKENS)}")
        if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1):
            raise ConfigError(f"data.max_len={max_len!r} is not allowed; it must be an integer >= 1 (or null)")
        super().__init__(batch_size, eval_batch_size, seed)
        self.options = {"source": None if path else source, "path": path, "tokens": tokens, "max_len": max_len,
                        "val_fraction": val_fraction, "test_fraction": test_fraction, "seed": seed}
        if path is None:
            self.options |= ({"num_pairs": num_pairs, "max_number": max_number, "numbers_per_item": numbers_per_item,
                              "src_lang": src_lang, "tgt_lang": tgt_lang} if source == "numbers"
                             else {"num_pairs": num_pairs, "tgt_locale": tgt_locale})
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.src_vocab: list[str] = []
        self.tgt_vocab: list[str] = []

    def pairs(self) -> list[tuple[str, str]]:
        """The raw sentence pairs of the configured source."""
        o = self.options
        if o["path"] is not None:
            return read_pairs(o["path"])
        if o["source"] == "numbers":
            return number_pairs(o["num_pairs"], o["max_number"], o["src_lang"], o["tgt_lang"],
                                o["numbers_per_item"], o["seed"])
        return date_pairs(o["num_pairs"], o["tgt_locale"], o["seed"])

    def cache_file(self) -> Path | None:
        """Where the tensors of these options live (a TSV source is hashed by its bytes)."""
        if self.cache_dir is None:
            return None
        options = dict(self.options)
        if options["path"] is not None and Path(options["path"]).expanduser().is_file():
            options["path"] = hashlib.sha256(Path(options["path"]).expanduser().read_bytes()).hexdigest()
        key = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:16]
        return self.cache_dir / "translation" / f"{key}.pt"

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            stored = self._cached()
            self.src_vocab, self.tgt_vocab = stored["src_vocab"], stored["tgt_vocab"]
            self.splits = {split: tuple(tensors) for split, tensors in stored["splits"].items()}

    def _cached(self) -> dict:
        """The vocabularies and split tensors: from the cache file, else built (and then saved
        atomically: parallel jobs may build the same file at once)."""
        cache = self.cache_file()
        if cache is not None and cache.is_file():
            return torch.load(cache, weights_only=True)
        stored = self._build()
        if cache is not None:
            write_torch(cache, stored)
        return stored

    def _build(self) -> dict:
        """Tokenize, drop over-long pairs, split, build both vocabularies, encode."""
        tokens, max_len = self.options["tokens"], self.options["max_len"]
        pairs = [(split_tokens(s, tokens), split_tokens(t, tokens)) for s, t in self.pairs()]
        pairs = [(s, t) for s, t in pairs if s and t]
        if max_len is not None:
            kept = [(s, t) for s, t in pairs if len(s) <= max_len and len(t) <= max_len]
            log.warning("data.max_len=%d dropped %d of %d pairs", max_len, len(pairs) - len(kept), len(pairs))
            pairs = kept
        parts = split_by_fractions(pairs, self.options["val_fraction"], self.options["test_fraction"],
                                   seed=self.options["seed"])
        if not parts["train"]:
            raise ConfigError(f"{len(pairs)} pairs are too few for a training split")
        src_vocab = build_vocab([s for s, _ in parts["train"]])
        tgt_vocab = build_vocab([t for _, t in parts["train"]])
        splits = {name: [encode([s for s, _ in part], src_vocab, ends=False),
                         encode([t for _, t in part], tgt_vocab, ends=True)]
                  for name, part in parts.items() if part}
        return {"src_vocab": src_vocab, "tgt_vocab": tgt_vocab, "splits": splits}

    def on_before_batch_transfer(self, batch: tuple[torch.Tensor, torch.Tensor], dataloader_idx: int) -> tuple:
        """Cut both sides to the batch's longest row: rows are padded to the split's longest."""
        src, tgt = batch
        return trim(src), trim(tgt)

    @property
    def separator(self) -> str:
        return "" if self.options["tokens"] == "char" else " "

    def model_kwargs(self) -> dict:
        """What the model needs from the data, as plain data (stored in checkpoints)."""
        longest = max(tensors[1].size(1) for tensors in self.splits.values())
        return {"net": {"src_vocab_size": len(self.src_vocab), "tgt_vocab_size": len(self.tgt_vocab)},
                "src_vocab": self.src_vocab, "tgt_vocab": self.tgt_vocab, "separator": self.separator,
                "tokens": self.options["tokens"], "max_target_len": 2 * longest}
