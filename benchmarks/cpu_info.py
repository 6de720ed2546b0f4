"""The machine line every CPU benchmark prints: CPU model and the instruction sets that decide its speed."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from stylegan.precision import cpu_flags

# (printed name, /proc/cpuinfo flag): what changes which kernels oneDNN/MKL can use.
ISA_FLAGS = [("AVX2", "avx2"), ("AVX-512", "avx512f"), ("AVX512-BF16", "avx512_bf16"), ("AMX", "amx_bf16")]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what the platform module says."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_summary() -> str:
    """``CPU <model>, <n> cores; AVX2 yes, AVX-512 yes, AVX512-BF16 yes, AMX no; torch <version>``."""
    flags = cpu_flags()
    isa = ", ".join(f"{name} {'yes' if flag in flags else 'no'}" for name, flag in ISA_FLAGS)
    import os

    return f"CPU {cpu_model()}, {os.cpu_count()} cores; {isa}; torch {torch.__version__}"
