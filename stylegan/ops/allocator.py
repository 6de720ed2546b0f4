"""Keep freed memory in the process on glibc, so big CPU tensors do not page-fault on every allocation.

glibc serves requests above its mmap threshold (at most 32 MiB) with fresh ``mmap`` pages and returns them on
free, so a training step that allocates and frees the same large activations each iteration pays for
zero-filling new pages every time: measured here, a 36 MiB buffer took 15.7 ms to fill fresh against 2.8 ms
reused. Serving everything from the heap and trimming it rarely removes that cost, as the caching allocator
does on GPUs. The price is that memory freed by the process is kept for reuse rather than returned.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_tuned = False


def tune_cpu_allocator() -> bool:
    """Make glibc malloc keep and reuse large blocks; returns whether it applied (False off glibc)."""
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _tuned = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _tuned
