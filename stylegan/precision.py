"""Inference precision: fp32 (the default, the official pixels) or bf16 (opt-in, faster on recent CPUs).

bf16 is chosen per job with :func:`inference_precision`, a context manager the commands wrap around their
generator calls; the synthesis network reads it (:func:`active_precision`) when it picks its compute dtype.
Nothing else changes: the mapping network, demodulation sums, noise and the image accumulation stay
float32, and the image comes back as float32. Training and metrics never enter the context, so they stay
float32 always.

bf16 only pays off where the hardware multiplies it natively (AVX512-BF16 or AMX on x86 CPUs; CUDA GPUs
with bf16 support). Elsewhere PyTorch emulates it, slower than fp32: there :func:`resolve_precision` says
so once and falls back to fp32 rather than running silently slower.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from pathlib import Path
from typing import Iterator

import torch

from stylegan.errors import StyleGANError

PRECISIONS = ("fp32", "bf16")
# CPU flags (as /proc/cpuinfo names them) whose presence means bf16 dot products run in hardware.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")

_active: contextvars.ContextVar[str] = contextvars.ContextVar("stylegan_inference_precision", default="fp32")
# Inference entry points (the commands, the explorer) run inside inference_precision; only there may ops keep
# values computed from weights between calls (stylegan.ops.weight_cache). Training never enters it: its
# fused Adam step changes weights without bumping their version counters, so kept values would go stale.
_keeping: contextvars.ContextVar[bool] = contextvars.ContextVar("stylegan_keep_weight_work", default=False)
_fallback_said = False


def cpu_flags() -> set[str]:
    """The CPU's instruction-set flags from /proc/cpuinfo (empty where there is none, e.g. off Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX-BF16)."""
    return any(flag in cpu_flags() for flag in NATIVE_BF16_FLAGS)


def device_has_native_bf16(device: torch.device) -> bool:
    """Whether bf16 convolutions on ``device`` are native (CPU flags; CUDA's own check; never on MPS)."""
    if device.type == "cpu":
        return cpu_has_native_bf16()
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return False


def resolve_precision(name: str, device: torch.device | str = "cpu") -> str:
    """The precision to run for the requested ``name`` on ``device``: ``'fp32'`` or ``'bf16'``.

    An unknown name raises StyleGANError. bf16 where the device has no native bf16 falls back to fp32,
    saying so once per process on stderr (emulated bf16 would run slower than fp32).
    """
    global _fallback_said
    text = str(name).strip().lower()
    if text not in PRECISIONS:
        raise StyleGANError(f"unknown precision {name!r}", f"use {' or '.join(PRECISIONS)}")
    device = torch.device(device)
    if text == "bf16" and not device_has_native_bf16(device):
        if not _fallback_said:
            print(f"note: {device.type} has no native bf16 (AVX512-BF16 or AMX on CPUs); running fp32, "
                  f"which is faster there", file=sys.stderr)
            _fallback_said = True
        return "fp32"
    return text


def active_precision() -> str:
    """The precision of the surrounding :func:`inference_precision` context, ``'fp32'`` outside any."""
    return _active.get()


def keeps_weight_work() -> bool:
    """Whether the caller is inside :func:`inference_precision`, where weights only change through
    version-bumping in-place ops, so ops may keep values computed from them."""
    return _keeping.get()


def active_dtype() -> torch.dtype:
    """The synthesis compute dtype the active precision asks for: float32 or bfloat16."""
    return torch.bfloat16 if _active.get() == "bf16" else torch.float32


@contextlib.contextmanager
def inference_precision(precision: str = "fp32") -> Iterator[str]:
    """Run the synthesis networks called inside in ``precision`` (already resolved: 'fp32' or 'bf16').

    Autograd still works inside (the projector differentiates through bf16 convolutions). Contexts nest;
    the outer precision comes back on exit.
    """
    if precision not in PRECISIONS:
        raise StyleGANError(f"unknown precision {precision!r}", f"use {' or '.join(PRECISIONS)}")
    token, keeping = _active.set(precision), _keeping.set(True)
    try:
        yield precision
    finally:
        _keeping.reset(keeping)
        _active.reset(token)
