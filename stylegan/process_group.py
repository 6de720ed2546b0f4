"""The one place that reads the `torchrun` environment, picks each process's device, and joins or leaves the
torch.distributed process group. Training and metrics both start here.

Leaving must really end the group: ``destroy_process_group`` only drops torch's own references, and a
group that something else still holds lives on until the interpreter shuts down. Its gloo threads are
then torn down in the middle of module cleanup, which now and then aborts the process ("terminate called
without an active exception", SIGABRT) after the work was done, and torchrun reports the run as failed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.distributed as dist

from stylegan.devices import resolve_device
from stylegan.errors import StyleGANError


@dataclass(frozen=True)
class Launch:
    """Where this process stands among those `torchrun` started; a plain ``python`` run is rank 0 of 1."""

    rank: int = 0  # 0 … world-1 over all machines; rank 0 writes files and reports
    world: int = 1  # number of processes
    local_rank: int = 0  # index among the processes on this machine: which GPU this one takes

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(environ: Mapping[str, str], name: str, default: int | None) -> int:
    text = environ.get(name)
    if text is None:
        if default is None:
            raise StyleGANError(f"{name} is not set although WORLD_SIZE asks for several processes",
                                "start the processes with torchrun, which sets RANK, LOCAL_RANK and WORLD_SIZE")
        return default
    try:
        return int(text)
    except ValueError:
        raise StyleGANError(f"environment variable {name}={text!r} is not a whole number",
                            "unset it, or start the processes with torchrun") from None


def launch_from_env(environ: Mapping[str, str] | None = None) -> Launch:
    """This process's :class:`Launch`, read from WORLD_SIZE, RANK and LOCAL_RANK (what torchrun sets)."""
    env = os.environ if environ is None else environ
    world = _env_int(env, "WORLD_SIZE", 1)
    if world <= 1:
        return Launch(0, 1, _env_int(env, "LOCAL_RANK", 0))
    launch = Launch(_env_int(env, "RANK", None), world, _env_int(env, "LOCAL_RANK", 0))
    if not 0 <= launch.rank < world:
        raise StyleGANError(f"RANK={launch.rank} does not fit WORLD_SIZE={world}",
                            "start the processes with torchrun")
    return launch


def start(device_spec: str | torch.device = "auto") -> tuple[Launch, torch.device]:
    """Read the launch, pick this process's device for ``device_spec`` and, with several processes, join.

    ``auto`` and plain ``cuda`` give process ``local_rank`` its own GPU; an unknown or unavailable device is
    a StyleGANError (see :func:`stylegan.devices.resolve_device`). Pair with :func:`leave`.
    """
    launch = launch_from_env()
    device = resolve_device(device_spec, launch.local_rank)
    if launch.world > 1:
        if device.type == "cuda":
            torch.cuda.set_device(device)  # NCCL uses the current device for its communicators
        join(device)
    return launch, device


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
