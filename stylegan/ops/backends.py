"""PyTorch's process-wide GPU arithmetic switches, set for the span of one job.

PyTorch lets cuDNN convolutions use TF32 on Ampere-and-newer GPUs by default: about 1e-3 relative error
instead of float32's 1e-7. The official training loop and metrics turn TF32 off (and cuDNN autotuning on),
so their numbers are true float32 on every GPU generation; ours do the same unless asked otherwise. The
switches change nothing on the CPU.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def cuda_arithmetic(benchmark: bool = True, allow_tf32: bool = False) -> Iterator[None]:
    """cuDNN autotuning and TF32 (matmuls and convolutions) as given; the previous values come back after."""
    flags = [(torch.backends.cudnn, "benchmark", benchmark),
             (torch.backends.cudnn, "allow_tf32", allow_tf32),
             (torch.backends.cuda.matmul, "allow_tf32", allow_tf32)]
    before = [getattr(owner, name) for owner, name, _ in flags]
    try:
        for owner, name, value in flags:
            setattr(owner, name, value)
        yield
    finally:
        for (owner, name, _), value in zip(flags, before):
            setattr(owner, name, value)
