"""The generator's exponential moving average (G_ema), the network a run's snapshots are judged by."""

from __future__ import annotations

import torch
from torch import nn


def ema_beta(batch: int, ema_kimg: float, ema_rampup: float | None, cur_nimg: int) -> float:
    """How much of the average survives one minibatch of ``batch`` images.

    The average has a half-life of ``ema_kimg`` thousand images; with a ramp-up it is at most
    ``ema_rampup · cur_nimg`` images, so early in a run the average follows the young generator closely.
    """
    half_life = ema_kimg * 1000
    if ema_rampup is not None:
        half_life = min(half_life, cur_nimg * ema_rampup)
    return 0.5 ** (batch / max(half_life, 1e-8))


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, beta: float) -> None:
    """``target ← source + beta · (target − source)`` for each parameter; buffers (e.g. ``w_avg``) are
    copied, not averaged. Both modules must have the same structure."""
    averaged, live = list(target.parameters()), list(source.parameters())
    if averaged:
        # One batched lerp per minibatch rather than one kernel launch per tensor.
        for kept, blended in zip(averaged, torch._foreach_lerp(live, averaged, beta)):
            kept.copy_(blended)
    for kept, current in zip(target.buffers(), source.buffers()):
        kept.copy_(current)
