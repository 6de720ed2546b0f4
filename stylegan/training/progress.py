"""The counters of a training run: what a snapshot stores so that a resumed run continues exactly.

Every random draw of the loop is derived from (seed, these counters), so they are the run's RNG state too.
The field names are stored in snapshot files: keep them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Progress:
    """Where a run stands, in images, minibatches and ticks, plus ADA's pending evidence."""

    cur_nimg: int = 0  # images shown to D so far (all ranks together)
    batch_idx: int = 0  # minibatches trained so far
    cur_tick: int = 0  # ticks completed
    tick_start_nimg: int = 0  # cur_nimg when the current tick began
    ada_sign_sum: float = 0.0  # sum of sign(D(real)) over all ranks since ADA last moved p
    ada_sign_count: int = 0  # how many logits that sum covers
