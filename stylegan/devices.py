"""Naming and finding torch devices: the one place that turns ``auto``/``cpu``/``cuda:N``/``mps`` into a device."""

from __future__ import annotations

import os
import re

import torch
from torch import nn

from stylegan.errors import StyleGANError

DEVICE_FORMS = "auto, cpu, cuda, cuda:N or mps"


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()


def resolve_device(spec: str | torch.device = "auto", local_rank: int | None = None) -> torch.device:
    """An available device for ``spec``: ``auto`` prefers CUDA, then MPS, then the CPU.

    ``local_rank`` (one process per GPU under torchrun) picks that process's GPU for ``auto`` and plain
    ``cuda``. Unknown or unavailable devices raise StyleGANError that says which forms are accepted.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = str(spec).strip().lower()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not mps_available():
            raise StyleGANError("device mps: Apple MPS is not available here", "use device auto or cpu")
        return torch.device("mps")
    found = re.fullmatch(r"cuda(?::(\d+))?", text)
    if found is None:
        raise StyleGANError(f"unknown device {text!r}", f"use {DEVICE_FORMS}")
    if not torch.cuda.is_available():
        raise StyleGANError(f"device {text}: CUDA is not available here", "use device auto or cpu")
    count = torch.cuda.device_count()
    if found.group(1) is not None:
        index = int(found.group(1))
        if index >= count:
            raise StyleGANError(f"device {text}: there are only {count} CUDA devices",
                                f"use cuda:0 to cuda:{count - 1}")
        return torch.device("cuda", index)
    return torch.device("cuda", local_rank % count) if local_rank is not None else torch.device("cuda")


def module_device(module: nn.Module) -> torch.device:
    """Where ``module`` keeps its weights: its first parameter's (or buffer's) device, the CPU if it has none."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def idle_cpu_threads() -> int | None:
    """CPU threads for a command given no ``--threads``: the cores other processes leave idle.

    PyTorch takes every core, which on a busy machine runs 2.5–8× slower than one thread (threads wait on
    each other's time slices); on an idle 2-core machine two threads run 1.7× faster than one. So: the
    cores this process may use minus the 1-minute load average, at least 1 and never above PyTorch's
    current count (set_num_threads stays the upper bound). None, leaving PyTorch's count as it is, where
    OMP_NUM_THREADS names a count (the user chose) or the load average is unknown.
    """
    if os.environ.get("OMP_NUM_THREADS", "").strip():
        return None
    try:
        load = os.getloadavg()[0]
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    except OSError:
        return None
    return max(1, min(torch.get_num_threads(), cores - round(load)))
