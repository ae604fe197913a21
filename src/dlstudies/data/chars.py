"""Character corpora: one item per line (names) or one continuous stream (tiny-shakespeare)."""

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from dlstudies.data.download import CORPORA, fetch
from dlstudies.config.errors import ConfigError
from dlstudies.data.names import load_names
from dlstudies.data.tensors import tensor_loader, window_loader

BOUNDARY = "\n"  # starts and ends every line item, like makemore's '.'
UNKNOWN = "\ufffd"  # stands for characters of val/test that the training split never shows
IGNORE = -1  # target index the loss skips: padding after a line's end


def read_text(path: str | Path) -> str:
    """The file's text, with a one-line error when it is missing or empty."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"data.path={path} does not exist; give a UTF-8 text file")
    text = file.read_text(encoding="utf-8")
    if not text.strip():
        raise ConfigError(f"data.path={path} is an empty corpus; give a file with text in it")
    return text


def encode_lines(lines: list[str], stoi: dict[str, int], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows x = [BOUNDARY] + chars, y = chars + [BOUNDARY], padded to ``length`` (y with IGNORE)."""
    unk = stoi.get(UNKNOWN, 0)
    x = torch.zeros(len(lines), length, dtype=torch.long)
    y = torch.full((len(lines), length), IGNORE, dtype=torch.long)
    for row, line in enumerate(lines):
        ids = [stoi.get(ch, unk) for ch in line[: length - 1]] + [stoi[BOUNDARY]]
        x[row, 1 : len(ids)] = torch.tensor(ids[:-1], dtype=torch.long)
        y[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return x, y


class CharDataModule(L.LightningDataModule):
    """A character corpus tokenized once into tensors, split deterministically by ``seed``.

    ``mode="lines"``: each non-empty line is an item (a name); rows are padded and the loss skips
    the padding. ``mode="stream"``: the text is one sequence; training takes random windows of
    ``block_size`` characters, evaluation non-overlapping blocks. Splits: lines are shuffled then
    cut; a stream is cut in order (train, then validation, then test), as nanoGPT does.
    """

    def __init__(self, path: str | None = None, builtin: str | None = None, mode: str = "lines",
                 block_size: int = 16, batch_size: int = 32, eval_batch_size: int | None = None,
                 val_fraction: float = 0.1,
                 test_fraction: float = 0.1, seed: int = 1337, num_names: int = 32032,
                 data_dir: str = "data") -> None:
        super().__init__()
        if mode not in ("lines", "stream"):
            raise ConfigError(f"data.mode={mode!r} is not allowed; use lines or stream")
        self.path, self.builtin, self.mode = path, builtin, mode
        self.block_size, self.batch_size, self.seed = block_size, batch_size, seed
        self.eval_batch_size = eval_batch_size or batch_size  # evaluation: bigger batches, same result
        self.val_fraction, self.test_fraction, self.num_names = val_fraction, test_fraction, num_names
        self.data_dir = data_dir  # where downloadable corpora (``builtin: shakespeare``) are kept
        self.vocab: list[str] = []
        self.splits: dict[str, tuple[torch.Tensor, ...]] = {}

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
        if self.mode == "lines":
            self._setup_lines([line.strip() for line in text.splitlines() if line.strip()])
        else:
            self._setup_stream(text)

    def _build_vocab(self, train: str, rest: str) -> dict[str, int]:
        chars = sorted(set(train) - {BOUNDARY})
        unknown = [UNKNOWN] if set(rest) - set(train) - {BOUNDARY} else []
        boundary = [BOUNDARY] if self.mode == "lines" or BOUNDARY in train else []
        self.vocab = boundary + chars + unknown
        return {ch: i for i, ch in enumerate(self.vocab)}

    def _setup_lines(self, lines: list[str]) -> None:
        order = torch.randperm(len(lines), generator=torch.Generator().manual_seed(self.seed))
        lines = [lines[i] for i in order]
        n_val, n_test = int(self.val_fraction * len(lines)), int(self.test_fraction * len(lines))
        n_train = len(lines) - n_val - n_test
        if n_train < 1:
            raise ConfigError(f"the corpus has {len(lines)} lines: too few for a training split")
        parts = {"train": lines[:n_train], "val": lines[n_train : n_train + n_val],
                 "test": lines[n_train + n_val :]}
        stoi = self._build_vocab("".join(parts["train"]), "".join(parts["val"] + parts["test"]))
        length = min(self.block_size, max(len(line) for line in lines) + 1)
        self.splits = {name: encode_lines(part, stoi, length) for name, part in parts.items() if part}

    def _setup_stream(self, text: str) -> None:
        n_val, n_test = int(self.val_fraction * len(text)), int(self.test_fraction * len(text))
        n_train = len(text) - n_val - n_test
        parts = {"train": text[:n_train], "val": text[n_train : n_train + n_val],
                 "test": text[n_train + n_val :]}
        stoi = self._build_vocab(parts["train"], parts["val"] + parts["test"])
        unk = stoi.get(UNKNOWN, 0)
        self.splits = {name: (torch.tensor([stoi.get(ch, unk) for ch in part], dtype=torch.long),)
                       for name, part in parts.items() if len(part) > self.block_size}

    def on_before_batch_transfer(self, batch: tuple[torch.Tensor, ...], dataloader_idx: int) -> tuple:
        """Line items: drop the columns past the batch's longest line, which are all padding.

        Rows are padded to the longest line of the corpus, but most batches are shorter; trimming
        here, on the CPU before the copy to the device, saves their compute at no cost.
        """
        if self.mode != "lines":
            return batch
        x, y = batch
        length = int((y != IGNORE).sum(1).max())
        return x[:, :length], y[:, :length]

    def model_kwargs(self) -> dict:
        """What the model needs from the data, as plain data (stored in checkpoints)."""
        return {"net": {"vocab_size": len(self.vocab)}, "vocab": self.vocab,
                "lines": self.mode == "lines", "separator": ""}

    def _loader(self, split: str, shuffle: bool) -> DataLoader | list:
        if split not in self.splits:
            return []
        batch_size = self.batch_size if shuffle else self.eval_batch_size
        if self.mode == "lines":
            return tensor_loader(*self.splits[split], batch_size=batch_size, shuffle=shuffle,
                                 seed=self.seed)
        return window_loader(self.splits[split][0], self.block_size, batch_size, shuffle,
                             seed=self.seed)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader | list:
        return self._loader("test", shuffle=False)
