"""Character corpora: one item per line (names) or one continuous stream (tiny-shakespeare)."""

from pathlib import Path

import torch

from dlstudies.config.errors import ConfigError
from dlstudies.data.base import split_by_fractions
from dlstudies.data.download import CORPORA, fetch
from dlstudies.data.names import load_names
from dlstudies.data.tokens import IGNORE, TokenDataModule, item_rows

BOUNDARY = "\n"  # starts and ends every line item, like makemore's '.'
UNKNOWN = "\ufffd"  # stands for characters of val/test that the training split never shows


def read_text(path: str | Path) -> str:
    """The file's text, with a one-line error naming the file and what is wrong with it: missing,
    a directory or a device, unreadable, not UTF-8 (binary, UTF-16), or empty."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8") if file.is_file() else None
    except UnicodeDecodeError as error:
        found = f"byte {error.object[error.start]:#04x} at offset {error.start}"
        raise _not_text(path, f"is not UTF-8 text ({found}: binary or UTF-16?)") from None
    except OSError as error:
        raise _not_text(path, f"cannot be read ({error.strerror})") from None
    if text is None:
        raise _not_text(path, "does not exist" if not file.exists() else "is a directory" if file.is_dir()
                        else "is not a regular file (a device or a pipe)")
    if "\0" in text:  # UTF-16 without a byte-order mark decodes as UTF-8 with a NUL after each letter
        raise _not_text(path, "holds NUL bytes (binary, or UTF-16 without a byte-order mark?)")
    if not text.strip():
        raise ConfigError(f"data.path={path} is an empty corpus; give a file with text in it")
    return text


def _not_text(path: str | Path, problem: str) -> ConfigError:
    return ConfigError(f"data.path={path} {problem}; give a UTF-8 text file")


def encode_lines(lines: list[str], stoi: dict[str, int], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows x = [BOUNDARY] + chars, y = chars + [BOUNDARY], padded to ``length`` (y with IGNORE)."""
    unk = stoi.get(UNKNOWN, 0)
    return item_rows([[stoi.get(ch, unk) for ch in line] for line in lines], stoi[BOUNDARY], length)


class CharDataModule(TokenDataModule):
    """A character corpus tokenized once into tensors, split deterministically by ``seed``.

    ``mode="lines"``: each non-empty line is an item (a name); rows are padded and the loss skips
    the padding. ``mode="stream"``: the text is one sequence; training takes random windows of
    ``block_size`` characters, evaluation non-overlapping blocks. Splits: lines are shuffled then
    cut; a stream is cut in order (train, then validation, then test), as nanoGPT does.
    ``tokenizer`` (``bpe`` or a tokenizer.json) makes the tokens byte-level BPE instead of
    characters, cached in ``data_dir``/bpe.
    """

    def __init__(self, path: str | None = None, builtin: str | None = None, mode: str = "lines",
                 block_size: int = 16, batch_size: int = 32, eval_batch_size: int | None = None,
                 val_fraction: float = 0.1,
                 test_fraction: float = 0.1, seed: int = 1337, num_names: int = 32032,
                 data_dir: str = "data", tokenizer: str | None = None, vocab_size: int = 1024) -> None:
        if mode not in ("lines", "stream"):
            raise ConfigError(f"data.mode={mode!r} is not allowed; use lines or stream")
        super().__init__(block_size, batch_size, eval_batch_size, val_fraction, test_fraction, seed,
                         stream=mode == "stream", tokenizer=tokenizer, vocab_size=vocab_size, cache_dir=data_dir)
        self.path, self.builtin, self.num_names = path, builtin, num_names
        self.data_dir = data_dir  # where downloadable corpora (``builtin: shakespeare``) are kept

    def corpus(self) -> str:
        """The raw text: the local file when ``path`` is set, else the built-in corpus (names, or a
        downloadable one such as shakespeare, fetched into ``data_dir`` on first use)."""
        if self.path is not None:
            return read_text(self.path)
        if self.builtin == "names":
            return "\n".join(load_names(self.num_names))
        if self.builtin in CORPORA:
            return read_text(fetch(self.builtin, self.data_dir))
        raise ConfigError("data.path is missing; give data.path=/path/to/text.txt")

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        text = self.corpus()
        if self.stream:
            self._setup_stream(text)
        else:
            self._setup_lines([line.strip() for line in text.splitlines() if line.strip()])

    def _build_vocab(self, train: str, rest: str) -> dict[str, int]:
        chars = sorted(set(train) - {BOUNDARY})
        unknown = [UNKNOWN] if set(rest) - set(train) - {BOUNDARY} else []
        boundary = [BOUNDARY] if not self.stream or BOUNDARY in train else []
        self.vocab = boundary + chars + unknown
        return {ch: i for i, ch in enumerate(self.vocab)}

    def _setup_lines(self, lines: list[str]) -> None:
        parts = split_by_fractions(lines, self.val_fraction, self.test_fraction, seed=self.seed)
        if not parts["train"]:
            raise ConfigError(f"the corpus has {len(lines)} lines: too few for a training split")
        if self.tokenizer:
            self.setup_bpe(parts)
            return
        stoi = self._build_vocab("".join(parts["train"]), "".join(parts["val"] + parts["test"]))
        length = min(self.block_size, max(len(line) for line in lines) + 1)
        self.splits = {name: encode_lines(part, stoi, length) for name, part in parts.items() if part}

    def _setup_stream(self, text: str) -> None:
        parts = split_by_fractions(text, self.val_fraction, self.test_fraction)
        if self.tokenizer:
            self.setup_bpe({name: [part] for name, part in parts.items()})  # one item: the split's text
            return
        stoi = self._build_vocab(parts["train"], parts["val"] + parts["test"])
        unk = stoi.get(UNKNOWN, 0)
        self.set_streams({name: torch.tensor([stoi.get(ch, unk) for ch in part], dtype=torch.long)
                          for name, part in parts.items()})

    def on_before_batch_transfer(self, batch: tuple[torch.Tensor, ...], dataloader_idx: int) -> tuple:
        """Line items: drop the columns past the batch's longest line, which are all padding.

        Rows are padded to the longest line of the corpus, but most batches are shorter; trimming
        here, on the CPU before the copy to the device, saves their compute at no cost.
        """
        if self.stream:
            return batch
        x, y = batch
        length = int((y != IGNORE).sum(1).max())
        return x[:, :length], y[:, :length]
