"""The training loop's place among `torchrun` processes (:class:`Rank`) and the few collectives it needs.

Reading the environment, picking the device and joining the group happen in :mod:`stylegan.process_group`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from stylegan.process_group import Launch


@dataclass(frozen=True)
class Rank:
    """One training process: its rank among ``world`` processes and the device it trains on."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def of(cls, launch: Launch, device: torch.device) -> "Rank":
        return cls(launch.rank, launch.world, device)


def all_reduce_mean_(tensors: list[torch.Tensor], world: int) -> None:
    """Average tensors in place over all ranks (one flat collective, not one per tensor)."""
    if world <= 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for t in tensors:
        t.copy_(flat[offset: offset + t.numel()].reshape(t.shape))
        offset += t.numel()


def all_reduce_sum(t: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        t = t.clone()
        dist.all_reduce(t)
    return t


def broadcast_(tensors: list[torch.Tensor], world: int) -> None:
    """Make every rank hold rank 0's values (used once, after building/resuming the networks)."""
    if world > 1:
        for t in tensors:
            dist.broadcast(t, src=0)


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()
