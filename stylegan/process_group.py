"""Joining and leaving the torch.distributed process group that `torchrun` describes in the environment.

Leaving must really end the group: ``destroy_process_group`` only drops torch's own references, and a
group that something else still holds lives on until the interpreter shuts down. Its gloo threads are
then torn down in the middle of module cleanup, which now and then aborts the process ("terminate called
without an active exception", SIGABRT) after the work was done, and torchrun reports the run as failed.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def join(device: torch.device) -> None:
    """Join the default group (NCCL for CUDA tensors, gloo otherwise) unless this process already has."""
    if dist.is_initialized():
        return
    # torch.distributed.nn binds the default group into its functions' default arguments when it is first
    # imported, and torch.optim imports it (through torch._dynamo) on the first optimizer. Imported now,
    # before there is a group, it binds nothing.
    import torch.distributed.nn  # noqa: F401
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def leave() -> None:
    """Destroy the default group, if there is one; its communication threads end here."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
