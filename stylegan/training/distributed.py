"""torch.distributed setup for `torchrun` (NCCL on GPUs, gloo on CPU) and the few collectives we need."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from stylegan import process_group


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(spec: str = "auto", local_rank: int = 0) -> torch.device:
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(spec)


def init_from_env(device_spec: str = "auto") -> Rank:
    """Join the process group that `torchrun` describes in the environment (or run alone)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Rank(0, 1, pick_device(device_spec))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_spec, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    process_group.join(device)
    return Rank(rank, world, device)


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
