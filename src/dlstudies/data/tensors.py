"""Batches straight from tensors: no per-sample Python work in the training loop."""

import torch
from torch.utils.data import DataLoader, TensorDataset


class BatchedTensorDataset(TensorDataset):
    """TensorDataset whose ``__getitems__`` indexes a whole batch at once.

    The default DataLoader calls ``__getitem__`` once per sample and collates a list of tuples,
    which dominates the step time of small models. With ``__getitems__`` the sampler's indices
    (including Lightning's DistributedSampler under DDP) become one tensor gather per field.
    """

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        index = torch.as_tensor(indices)
        return [tensor[index] for tensor in self.tensors]


def tensor_loader(*tensors: torch.Tensor, batch_size: int, shuffle: bool, seed: int = 0,
                  drop_last: bool = False) -> DataLoader:
    """A DataLoader over aligned tensors that yields ``tuple`` batches in the main process."""
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(BatchedTensorDataset(*tensors), batch_size=batch_size, shuffle=shuffle,
                      generator=generator, drop_last=drop_last, collate_fn=tuple, num_workers=0)


class WindowDataset(torch.utils.data.Dataset):
    """(input, target) windows of ``block_size`` tokens cut from one long token stream.

    ``stride=1`` gives every window (random crops, as nanoGPT trains); ``stride=block_size``
    gives non-overlapping blocks that cover the stream once (for evaluation).
    """

    def __init__(self, tokens: torch.Tensor, block_size: int, stride: int = 1) -> None:
        if len(tokens) <= block_size:
            raise ValueError(f"a stream of {len(tokens)} tokens is too short for "
                             f"block_size={block_size}; use a longer text or a smaller block")
        self.tokens, self.block_size, self.stride = tokens, block_size, stride

    def __len__(self) -> int:
        return (len(self.tokens) - self.block_size - 1) // self.stride + 1

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        offsets = torch.as_tensor(indices)[:, None] * self.stride + torch.arange(self.block_size + 1)
        window = self.tokens[offsets]
        return [window[:, :-1], window[:, 1:]]


def window_loader(tokens: torch.Tensor, block_size: int, batch_size: int, shuffle: bool,
                  seed: int = 0) -> DataLoader:
    """Random windows for training (``shuffle``), non-overlapping blocks for evaluation."""
    dataset = WindowDataset(tokens, block_size, stride=1 if shuffle else block_size)
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      collate_fn=tuple, num_workers=0)
