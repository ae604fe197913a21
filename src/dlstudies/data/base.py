"""What the in-memory data modules share: splits by fractions, tensors per split, their loaders."""

from collections.abc import Sequence
from typing import TypeVar

import lightning as L
import torch
from torch.utils.data import DataLoader

from dlstudies.data.tensors import tensor_loader

Items = TypeVar("Items", bound=Sequence)


def split_by_fractions(items: Items, val_fraction: float, test_fraction: float,
                       seed: int | None = None) -> dict[str, Items]:
    """``items`` cut into train, val and test parts: ``val_fraction`` and ``test_fraction`` of
    them (rounded down) validate and test, the rest trains, in that order.

    With ``seed`` the items are shuffled first (independent items such as names); without, they
    keep their order, so a text's validation part is a later stretch of it (as nanoGPT cuts).
    """
    if seed is not None:
        order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed))
        items = [items[i] for i in order]
    n_val, n_test = int(val_fraction * len(items)), int(test_fraction * len(items))
    n_train = len(items) - n_val - n_test
    return {"train": items[:n_train], "val": items[n_train : n_train + n_val],
            "test": items[n_train + n_val :]}


class TensorDataModule(L.LightningDataModule):
    """Splits held as tensors, ``splits[name] = (tensor, ...)``, batched by tensor indexing.

    Subclasses fill ``splits`` in ``setup``. Training batches hold ``batch_size`` examples in a
    seeded random order; evaluation batches ``eval_batch_size`` in order (bigger, since no
    gradients are kept; results do not depend on it). A split that is absent gives no batches.

    ``kind`` says what one item is, in the words a task's ``reads`` uses ("text", "labelled
    arrays", "labelled text", "tagged text", "text pairs"): a model given data it cannot read
    stops before anything is built (config/validation.py).
    """

    kind: str

    def __init__(self, batch_size: int, eval_batch_size: int | None = None, seed: int = 0) -> None:
        super().__init__()
        self.batch_size, self.seed = batch_size, seed
        self.eval_batch_size = eval_batch_size or batch_size
        self.splits: dict[str, tuple[torch.Tensor, ...]] = {}

    def loader(self, tensors: tuple[torch.Tensor, ...], batch_size: int, shuffle: bool) -> DataLoader:
        """Batches of aligned examples: row i of every tensor is example i."""
        return tensor_loader(*tensors, batch_size=batch_size, shuffle=shuffle, seed=self.seed)

    def _split_loader(self, split: str, shuffle: bool = False) -> DataLoader | list:
        if split not in self.splits:
            return []
        return self.loader(self.splits[split], self.batch_size if shuffle else self.eval_batch_size, shuffle)

    def train_dataloader(self) -> DataLoader | list:
        return self._split_loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._split_loader("val")

    def test_dataloader(self) -> DataLoader | list:
        return self._split_loader("test")
