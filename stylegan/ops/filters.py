"""FIR low-pass filters used for up- and downsampling."""

from __future__ import annotations

from typing import Sequence

import torch


def make_filter(taps: Sequence[float] | torch.Tensor | None, separable: bool | None = None) -> torch.Tensor:
    """Turn filter taps into the normalised float32 kernel the resampling ops expect.

    ``taps`` is a 1-D list such as ``[1, 3, 3, 1]`` or an explicit 2-D kernel; ``None`` means identity.
    A 1-D list becomes its outer product (a 2-D kernel) unless it is long (>= 8 taps), in which case it
    stays 1-D and is applied separably. The result sums to 1 so a flat image keeps its brightness.
    This is the layout the official networks store in their ``resample_filter`` buffers.
    """
    f = torch.as_tensor(1.0 if taps is None else taps, dtype=torch.float32)
    if f.ndim == 0:
        f = f.reshape(1)
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise ValueError(f"a resampling filter must be 1-D or 2-D taps, got shape {tuple(f.shape)}")
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    return f / f.sum()


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a filter made by :func:`make_filter`; identity counts as 1×1."""
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    return f.shape[1], f.shape[0]
