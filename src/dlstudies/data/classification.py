"""What the image and MNIST-1D data modules share: tensor splits, loaders, batch augmentation."""

import torch
from torch.utils.data import DataLoader

from dlstudies.data.base import TensorDataModule

EVAL_BATCH = 1000  # evaluation batches: large, since no gradients are kept


def split_off(x: torch.Tensor, y: torch.Tensor, n: int, seed: int) -> tuple[tuple, tuple]:
    """A seeded random split of (x, y) into (the rest, ``n`` held-out examples)."""
    if not 1 <= n < len(x):
        raise ValueError(f"data.val_size={n} is not allowed; it must be in [1, {len(x) - 1}]")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    rest, held = order[n:], order[:n]
    return (x[rest], y[rest]), (x[held], y[held])


class ClassificationDataModule(TensorDataModule):
    """Labelled examples held as tensors: ``splits[name] = (x, y)`` for train, val and test.

    Subclasses fill ``splits`` and ``class_names`` in ``load()``; inputs are standardised with the
    training split's mean and std (kept in ``stats``) unless a subclass clears ``standardize``
    (binary pixels). Validation also evaluates (up to ``train_eval_size`` examples of) the training
    split, so every run records its training loss on the whole set, not only the noisy per-batch
    loss. ``augment`` transforms training batches on the device, all at once, after
    transfer (``augment_batch``), so augmentation costs no per-sample Python work.
    """

    kind = "labelled arrays"

    def __init__(self, batch_size: int = 128, seed: int = 0, augment: bool = False,
                 train_eval_size: int = 10000) -> None:
        super().__init__(batch_size, EVAL_BATCH, seed)
        self.augment, self.train_eval_size = augment, train_eval_size
        self.class_names: list[str] = []
        self.standardize, self.stats = True, (0.0, 1.0)

    def load(self) -> None:
        """Fill ``self.splits`` (unnormalised float inputs, long labels) and ``self.class_names``."""
        raise NotImplementedError

    def augment_batch(self, x: torch.Tensor) -> torch.Tensor:
        """A randomly transformed copy of a batch of standardised training inputs."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        self.load()
        if self.standardize:
            x = self.splits["train"][0]
            mean, std = x.mean(), x.std()
            self.splits = {name: ((x - mean) / std, y) for name, (x, y) in self.splits.items()}
            self.stats = (float(mean), float(std))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.splits["train"][0].shape[1:])

    def model_kwargs(self) -> dict:
        """What the model needs from the data, as plain data (stored in checkpoints): one
        example's shape (an MLP flattens it, a convnet convolves over it) and the classes."""
        return {"net": {"in_shape": list(self.input_shape), "num_classes": len(self.class_names)},
                "class_names": list(self.class_names)}

    def on_after_batch_transfer(self, batch: tuple, dataloader_idx: int) -> tuple:
        if self.augment and self.trainer is not None and self.trainer.training:
            x, y = batch
            return self.augment_batch(x), y
        return batch

    def val_dataloader(self) -> list[DataLoader]:
        """Validation split first; then the training split, evaluated like the validation split
        (``splits["train_eval"]`` where a subclass keeps a copy prepared as the validation split is)."""
        train = self.splits.get("train_eval") or self.splits["train"]
        train = tuple(t[: self.train_eval_size] for t in train)
        return [self._split_loader("val"), self.loader(train, self.eval_batch_size, shuffle=False)]
