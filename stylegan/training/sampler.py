"""Seeds and data order: every draw of a run comes from (seed, counters), never from hidden RNG state.

So a run resumed from a snapshot replays what the uninterrupted run would have done, and N ranks see
exactly the minibatches one process would.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch


def derived_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers, stable across processes, platforms and Python versions."""
    words = [int(p) & 0xFFFFFFFF for p in parts]
    state = np.random.SeedSequence(words).generate_state(2, np.uint64)
    return int(state[0] >> 1)


def epoch_order(size: int, seed: int, epoch: int) -> np.ndarray:
    """The dataset indices of one epoch, shuffled by (seed, epoch)."""
    return np.random.RandomState(derived_seed(seed, epoch) % 2**32).permutation(size)


def index_stream(size: int, seed: int, position: int) -> Iterator[int]:
    """Every index of the epoch-by-epoch order (see :func:`epoch_order`), starting ``position`` indices in."""
    epoch, skip = divmod(position, size)
    while True:
        yield from epoch_order(size, seed, epoch)[skip:].tolist()
        epoch, skip = epoch + 1, 0


class GlobalBatchSampler(torch.utils.data.Sampler):
    """This rank's share of an endless stream of global minibatches, shuffled afresh each epoch.

    The stream is cut into minibatches of ``batch`` indices; rank r takes the r-th of ``world`` equal
    slices of each. ``start_batch`` skips the minibatches a resumed run has already trained on.
    """

    def __init__(self, size: int, batch: int, rank: int, world: int, seed: int, start_batch: int = 0):
        self.size, self.batch, self.rank, self.world = size, batch, rank, world
        self.seed, self.start_batch = seed, start_batch

    def __iter__(self) -> Iterator[int]:
        share = self.batch // self.world
        first, last = self.rank * share, (self.rank + 1) * share
        stream = index_stream(self.size, self.seed, self.start_batch * self.batch)
        while True:
            minibatch = [next(stream) for _ in range(self.batch)]
            yield from minibatch[first:last]
