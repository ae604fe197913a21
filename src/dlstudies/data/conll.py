"""Token classification from a CoNLL-style file: one ``token<TAB>label`` line per token, a blank
line between sentences (named entities, parts of speech).

``token_column`` and ``label_column`` pick the tab-separated fields (default: the first and the
last), so CoNLL-2003 NER files in tab-separated form and Universal Dependencies CoNLL-U files
(``data.token_column=1 data.label_column=3`` for UPOS) are read as they are. Lines without a tab
that start with ``#`` are comments, ``-DOCSTART-`` lines separate documents; where the first
field is a CoNLL-U word index (``token_column > 0``), multi-word ranges (``1-2``) and empty nodes
(``1.1``) are skipped. Sentences are split by ``seed`` into train, val and test; the vocabulary
(``min_freq``, ``<unk>``) and the label set come from the training split; sentences longer than
``block_size`` are cut into pieces of ``block_size`` tokens.
"""

import re

import torch

from dlstudies.config.errors import ConfigError
from dlstudies.data.base import TensorDataModule, split_by_fractions
from dlstudies.data.chars import read_text
from dlstudies.data.tokens import IGNORE, trim_padding
from dlstudies.data.words import UNK, build_vocab

Sentence = tuple[list[str], list[str]]  # tokens, labels


def read_conll(path: str, token_column: int = 0, label_column: int = -1) -> list[Sentence]:
    """The file's sentences; a line without a tab (other than a comment) is a one-line error."""
    sentences, tokens, labels = [], [], []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip() or line.startswith("-DOCSTART-"):
            if tokens:
                sentences.append((tokens, labels))
            tokens, labels = [], []
            continue
        if "\t" not in line:
            if line.startswith("#"):
                continue
            raise ConfigError(f"data.path={path} line {number} has no tab: {line[:40]!r}; "
                              "give token<TAB>label lines")
        fields = line.split("\t")
        if token_column > 0 and re.fullmatch(r"\d+[-.]\d+", fields[0]):
            continue
        tokens.append(fields[token_column])
        labels.append(fields[label_column])
    if tokens:
        sentences.append((tokens, labels))
    return sentences


def encode(sentences: list[Sentence], stoi: dict[str, int], labels: dict[str, int],
           length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, length) token ids and label ids, ``IGNORE`` as padding, one row per piece of at most
    ``length`` tokens."""
    pieces = [(tokens[i : i + length], tags[i : i + length])
              for tokens, tags in sentences for i in range(0, len(tokens), length)]
    x = torch.full((len(pieces), length), IGNORE, dtype=torch.long)
    y = torch.full((len(pieces), length), IGNORE, dtype=torch.long)
    unk = stoi[UNK]
    for row, (tokens, tags) in enumerate(pieces):
        x[row, : len(tokens)] = torch.tensor([stoi.get(t, unk) for t in tokens])
        y[row, : len(tags)] = torch.tensor([labels[t] for t in tags])
    return x, y


class ConllDataModule(TensorDataModule):
    """``splits[s] = (x, y)``: token ids and per-token label ids, rows padded with ``IGNORE``."""

    kind = "tagged text"

    def __init__(self, path: str, token_column: int = 0, label_column: int = -1, block_size: int = 128,
                 min_freq: int = 1, batch_size: int = 32, eval_batch_size: int = 256,
                 val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0) -> None:
        super().__init__(batch_size, eval_batch_size, seed)
        self.path, self.token_column, self.label_column = path, token_column, label_column
        self.block_size, self.min_freq = block_size, min_freq
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.vocab: list[str] = []
        self.class_names: list[str] = []

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        sentences = read_conll(self.path, self.token_column, self.label_column)
        parts = split_by_fractions(sentences, self.val_fraction, self.test_fraction, seed=self.seed)
        if not parts["train"]:
            raise ConfigError(f"data.path={self.path} has {len(sentences)} sentences: too few for a training split")
        self.vocab = build_vocab([tokens for tokens, _ in parts["train"]], self.min_freq)
        self.class_names = sorted({tag for _, tags in parts["train"] for tag in tags})
        for split in ("val", "test"):
            unseen = {tag for _, tags in parts[split] for tag in tags} - set(self.class_names)
            if unseen:
                raise ConfigError(f"label {sorted(unseen)[0]!r} of the {split} split never occurs in the "
                                  f"training split of data.path={self.path}; give more data or fix the file")
        stoi = {token: i for i, token in enumerate(self.vocab)}
        labels = {tag: i for i, tag in enumerate(self.class_names)}
        self.splits = {split: encode(part, stoi, labels, self.block_size) for split, part in parts.items() if part}

    def model_kwargs(self) -> dict:
        """What the model needs from the data, as plain data (stored in checkpoints)."""
        return {"net": {"vocab_size": len(self.vocab), "num_classes": len(self.class_names),
                        "block_size": self.block_size},
                "class_names": self.class_names, "vocab": self.vocab}

    def on_before_batch_transfer(self, batch: tuple[torch.Tensor, ...], dataloader_idx: int) -> tuple:
        return trim_padding(batch)
