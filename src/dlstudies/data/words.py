"""Word corpora: a local text file or a Hugging Face corpus (WikiText, Penn Treebank) as one stream.

Each line becomes its words followed by ``<eos>``; the lines of a split are joined into one
contiguous token stream, and training reads random windows of ``block_size`` words from it
(evaluation: non-overlapping blocks), so RNNs see BPTT-length chunks and Transformers their
context. The vocabulary comes from the training split only: words seen fewer than ``min_freq``
times, or beyond the ``max_size`` most frequent, become ``<unk>``.

Tokenizing a large corpus takes seconds, so the processed tensors are cached under
``cache_dir`` in a file named by a hash of the source and of every option that changes them:
a second run with the same data config loads them instantly.
"""

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import torch

from dlstudies.config.errors import ConfigError
from dlstudies.data.base import split_by_fractions
from dlstudies.data.chars import read_text
from dlstudies.data.tokens import TokenDataModule
from dlstudies.files import write_torch

EOS, UNK = "<eos>", "<unk>"  # EOS is id 0: generation starts from it, as from a fresh line
PUNCTUATION = ("split", "strip", "keep")

# name -> (Hugging Face repository, load_dataset keyword arguments, text field). The PTB repository
# holds a loading script, which datasets >= 3 no longer runs: its Parquet export is read instead.
HF_CORPORA = {
    "wikitext2": ("Salesforce/wikitext", {"name": "wikitext-2-v1"}, "text"),
    "wikitext103": ("Salesforce/wikitext", {"name": "wikitext-103-v1"}, "text"),
    "ptb": ("ptb-text-only/ptb_text_only",
            {"revision": "refs/convert/parquet", "data_dir": "penn_treebank"}, "sentence"),
}
HF_SPLITS = {"train": "train", "val": "validation", "test": "test"}


def check_options(punctuation: str, min_freq: int, max_size: int | None) -> None:
    """One-line errors for processing options outside their range."""
    if punctuation not in PUNCTUATION:
        raise ConfigError(f"data.punctuation={punctuation!r} is not allowed; use {', '.join(PUNCTUATION)}")
    if min_freq < 1:
        raise ConfigError(f"data.min_freq={min_freq} is not allowed; it must be an integer >= 1")
    if max_size is not None and max_size < 3:
        raise ConfigError(f"data.max_size={max_size} is not allowed; it must be >= 3 (or null)")


def tokenize(line: str, lower: bool = True, punctuation: str = "split") -> list[str]:
    """The words of one line.

    ``punctuation``: ``split`` makes each mark its own token ("night," -> "night", ","), ``strip``
    drops marks, ``keep`` splits on whitespace only. Apostrophes inside words stay ("o'er").
    ``<unk>`` already in the text (WikiText, PTB) stays one token in every mode.
    """
    check_options(punctuation, 1, None)
    if lower:
        line = line.lower()
    if punctuation == "keep":
        return line.split()
    word = r"<unk>|\w+(?:'\w+)*"
    return re.findall(word + r"|[^\w\s]" if punctuation == "split" else word, line)


def build_vocab(lines: list[list[str]], min_freq: int = 1, max_size: int | None = None) -> list[str]:
    """``[<eos>, <unk>]`` then the training words seen at least ``min_freq`` times, most frequent
    first (ties alphabetical), cut so the whole vocabulary has at most ``max_size`` entries."""
    check_options(PUNCTUATION[0], min_freq, max_size)
    counts = Counter(word for line in lines for word in line)
    counts.pop(EOS, None)
    counts.pop(UNK, None)
    words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
    vocab = [EOS, UNK] + words
    return vocab if max_size is None else vocab[:max_size]


def encode(lines: list[list[str]], stoi: dict[str, int]) -> torch.Tensor:
    """One stream of ids: each line's words, out-of-vocabulary ones as ``<unk>``, then ``<eos>``."""
    unk, eos = stoi[UNK], stoi[EOS]
    ids = [i for line in lines for i in [*(stoi.get(w, unk) for w in line), eos]]
    return torch.tensor(ids, dtype=torch.long)


class WordDataModule(TokenDataModule):
    """A word-level corpus as train/val/test token streams, cached on disk.

    Source: ``path`` (a UTF-8 text file, split by lines in order: the first lines train, the next
    ``val_fraction`` validate, the last ``test_fraction`` test) or ``dataset`` (a name in
    ``HF_CORPORA``, with its own splits; needs the network the first time). With ``tokenizer``
    (``bpe`` or a tokenizer.json) the tokens are byte-level BPE of the raw lines instead of words:
    ``lower``, ``punctuation``, ``min_freq`` and ``max_size`` shape words only.
    """

    separator = " "

    def __init__(self, path: str | None = None, dataset: str | None = None, lower: bool = True,
                 punctuation: str = "split", min_freq: int = 1, max_size: int | None = None,
                 block_size: int = 35, batch_size: int = 32, eval_batch_size: int | None = None,
                 val_fraction: float = 0.1,
                 test_fraction: float = 0.1, seed: int = 1337, cache_dir: str | None = None,
                 tokenizer: str | None = None, vocab_size: int = 1024) -> None:
        if (path is None) == (dataset is None):
            raise ConfigError("give exactly one of data.path=/path/to/text.txt or data.dataset="
                             f"{'|'.join(HF_CORPORA)}")
        if dataset is not None and dataset not in HF_CORPORA:
            raise ConfigError(f"data.dataset={dataset} is not known; use one of {', '.join(HF_CORPORA)}")
        check_options(punctuation, min_freq, max_size)
        super().__init__(block_size, batch_size, eval_batch_size, val_fraction, test_fraction, seed,
                         tokenizer=tokenizer, vocab_size=vocab_size, cache_dir=cache_dir)
        self.path, self.dataset, self.lower, self.punctuation = path, dataset, lower, punctuation
        self.min_freq, self.max_size = min_freq, max_size

    def _raw_splits(self) -> dict[str, list[str]]:
        """The lines of each split, before tokenization."""
        if self.path is not None:
            lines = read_text(self.path).splitlines()
            return split_by_fractions(lines, self.val_fraction, self.test_fraction)
        return load_hf_corpus(self.dataset)

    def cache_key(self) -> str:
        """A hash of the source (the file's bytes, or the corpus name) and the processing options."""
        source = (hashlib.sha256(Path(self.path).expanduser().read_bytes()).hexdigest()
                  if self.path is not None and Path(self.path).expanduser().is_file() else self.dataset)
        options = {"source": source, "lower": self.lower, "punctuation": self.punctuation,
                   "min_freq": self.min_freq, "max_size": self.max_size,
                   "val_fraction": self.val_fraction if self.path else None,
                   "test_fraction": self.test_fraction if self.path else None}
        return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:16]

    def cache_file(self) -> Path | None:
        """Where the processed tensors live (None when caching is off)."""
        return None if self.cache_dir is None else self.cache_dir / "words" / f"{self.cache_key()}.pt"

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        if self.tokenizer:  # BPE replaces the words: each split's raw lines, one text
            self.setup_bpe({split: ["\n".join(lines) + "\n"] for split, lines in self._raw_splits().items()})
            return
        cache = self.cache_file()
        if cache is not None and cache.is_file():
            stored = torch.load(cache, weights_only=True)
            self.vocab = stored["vocab"]
            self.set_streams(stored["streams"])
            return
        tokenized = {split: [tokenize(line, self.lower, self.punctuation) for line in lines]
                     for split, lines in self._raw_splits().items()}
        tokenized = {split: [line for line in lines if line] for split, lines in tokenized.items()}
        self.vocab = build_vocab(tokenized["train"], self.min_freq, self.max_size)
        stoi = {word: i for i, word in enumerate(self.vocab)}
        streams = {split: encode(lines, stoi) for split, lines in tokenized.items() if lines}
        self.set_streams(streams)
        if cache is not None:
            write_torch(cache, {"vocab": self.vocab, "streams": streams})  # parallel jobs may build it at once


def load_hf_corpus(name: str) -> dict[str, list[str]]:
    """The lines of each split of a Hugging Face corpus; a one-line error when it cannot be fetched."""
    import datasets  # imported here: it is slow to import and only this source needs it

    repo, kwargs, field = HF_CORPORA[name]
    try:
        corpus = datasets.load_dataset(repo, **kwargs)
    except Exception as error:  # offline, hub down, or a changed repository: all end the run here
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(f"data.dataset={name} could not be loaded from the Hugging Face hub "
                                f"({reason}); connect to the internet once (it is cached after), "
                                "or give a local text file with data.path=...") from None
    return {split: corpus[hf_split][field] for split, hf_split in HF_SPLITS.items()}
