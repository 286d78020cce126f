"""The order a run visits its training samples, and the seed each one is augmented with.

Epoch ``e`` visits ``torch.randperm(n)`` drawn from a generator seeded with ``seed + e`` (as
DistributedSampler does), padded to a multiple of the process count and dealt out in turn
(process ``r`` takes positions ``r, r + P, ...``). A global batch of B is then the same B samples
whatever the number of processes, and a resumed run skips exactly the batches it has done.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

_MIX = 0x9E3779B97F4A7C15  # a large odd constant that spreads nearby (seed, epoch, index) apart


def epoch_order(length: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator()
    generator.manual_seed(seed + epoch)
    return torch.randperm(length, generator=generator).tolist()


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return ((seed * 1_000_003 + epoch) * _MIX + index) % (1 << 63)


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields ``(index, augmentation seed)`` for one process in one epoch, from ``start`` on
    (a position in this process's share, for resuming mid-epoch)."""

    def __init__(self, length: int, *, seed: int, epoch: int, rank: int = 0, world_size: int = 1, start: int = 0):
        order = epoch_order(length, seed, epoch)
        total = -(-length // world_size) * world_size
        order += order[: total - length]
        self.indices = order[rank:total:world_size][start:]
        self.seed, self.epoch = seed, epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((index, sample_seed(self.seed, self.epoch, index)) for index in self.indices)

    def __len__(self) -> int:
        return len(self.indices)
