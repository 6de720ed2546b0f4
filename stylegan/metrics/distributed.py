"""Sharding metric work over `torchrun` processes: which share is mine, and putting the shares back together.

Work is split into *units* (one real image, one group of generated images, one PPL batch) numbered
0, 1, 2, …; rank ``r`` of ``world`` takes units ``r, r + world, r + 2·world, …``. Because every unit's
randomness depends only on its number, the union over ranks is the same work a single process does, and
:func:`gather_units` restores the single-process order. With ``world == 1`` nothing here communicates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from stylegan import process_group


@dataclass(frozen=True)
class Shard:
    """This process's place among ``world`` processes (``rank`` 0 reports and writes files)."""

    rank: int = 0
    world: int = 1

    def __post_init__(self) -> None:
        if self.world < 1 or not 0 <= self.rank < self.world:
            raise ValueError(f"rank {self.rank} does not fit world size {self.world}")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def units(self, num_units: int) -> range:
        """The unit numbers this rank handles, in increasing order."""
        return range(self.rank, num_units, self.world)


def current_shard(rank: int | None = None, world: int | None = None) -> Shard:
    """The given rank/world, else the initialised torch.distributed group's, else a single process."""
    if rank is not None or world is not None:
        return Shard(rank or 0, world or 1)
    if dist.is_available() and dist.is_initialized():
        return Shard(dist.get_rank(), dist.get_world_size())
    return Shard()


def start_shard(device: str | torch.device = "auto") -> tuple[Shard, torch.device]:
    """Join the `torchrun` processes (see :func:`stylegan.process_group.start`): this process's shard and device.

    ``auto`` and plain ``cuda`` give each process its own GPU. A single process joins nothing.
    """
    launch, rank_device = process_group.start(device)
    return Shard(launch.rank, launch.world), rank_device


def shutdown(shard: Shard) -> None:
    """Leave the process group :func:`start_shard` joined (nothing for a single process)."""
    if shard.world > 1:
        process_group.leave()


def _comm_device() -> torch.device:
    # NCCL moves only CUDA tensors; gloo only CPU ones.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_sum(tensor: torch.Tensor, shard: Shard) -> torch.Tensor:
    """The element-wise sum of ``tensor`` over all ranks (a new tensor on ``tensor``'s device)."""
    if shard.world == 1:
        return tensor.clone()
    t = tensor.to(_comm_device(), copy=True)
    dist.all_reduce(t)
    return t.to(tensor.device)


def all_max(tensor: torch.Tensor, shard: Shard) -> torch.Tensor:
    """The element-wise maximum of ``tensor`` over all ranks."""
    if shard.world == 1:
        return tensor.clone()
    t = tensor.to(_comm_device(), copy=True)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.to(tensor.device)


def any_rank(flag: bool, shard: Shard) -> bool:
    """True when ``flag`` is true on any rank."""
    return bool(all_sum(torch.tensor([float(flag)]), shard).item() > 0)


def main_rank_flag(flag: bool, shard: Shard) -> bool:
    """Rank 0's ``flag``, on every rank (so all ranks take the same branch)."""
    return any_rank(flag and shard.is_main, shard)


def gather_units(local: torch.Tensor, unit_sizes: np.ndarray, shard: Shard) -> torch.Tensor:
    """Reassemble rows that were computed unit by unit on all ranks into single-process order.

    Args:
        local: this rank's rows ``[n_local, ...]``: its units' rows, unit after unit, in increasing unit order.
        unit_sizes: rows per unit ``[num_units]`` for all units (the same on every rank).
    Returns:
        all rows ``[unit_sizes.sum(), ...]`` on ``local``'s device, ordered by unit number.
    """
    unit_sizes = np.asarray(unit_sizes, dtype=np.int64)
    if shard.world == 1:
        if len(local) != unit_sizes.sum():
            raise ValueError(f"expected {unit_sizes.sum()} rows, got {len(local)}")
        return local
    starts = np.concatenate([[0], np.cumsum(unit_sizes)[:-1]]).astype(np.int64)
    counts = [int(unit_sizes[r::shard.world].sum()) for r in range(shard.world)]
    if len(local) != counts[shard.rank]:
        raise ValueError(f"rank {shard.rank}: expected {counts[shard.rank]} rows, got {len(local)}")
    dev = _comm_device()
    padded = torch.zeros([max(counts), *local.shape[1:]], dtype=local.dtype, device=dev)
    padded[: len(local)] = local.to(dev)
    pieces = [torch.empty_like(padded) for _ in range(shard.world)]
    dist.all_gather(pieces, padded)
    out = torch.empty([int(unit_sizes.sum()), *local.shape[1:]], dtype=local.dtype, device=dev)
    for r in range(shard.world):
        units = np.arange(r, len(unit_sizes), shard.world)
        if len(units) == 0:
            continue
        # Global row positions of rank r's rows, unit after unit.
        positions = np.concatenate([np.arange(starts[u], starts[u] + unit_sizes[u]) for u in units])
        out[torch.from_numpy(positions).to(dev)] = pieces[r][: counts[r]]
    return out.to(local.device)
