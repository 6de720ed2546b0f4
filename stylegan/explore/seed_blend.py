"""Continuous seeds for the explorer: a fractional seed position blends the ws of its two neighbouring seeds.

Seed ``s + f`` (integer s, 0 ≤ f < 1) gives ``(1 − f) · ws(s) + f · ws(s + 1)``, each ws mapped from the official
z of its seed and truncated as asked; an integer position gives ``ws(s)`` exactly, so its image is the one
``stylegan generate --seeds s`` writes. Dragging the seed therefore moves smoothly through W.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from stylegan.devices import module_device
from stylegan.errors import StyleGANError
from stylegan.explore.labels import class_labels
from stylegan.explore.seeds import MAX_SEED, seed_latents


def check_seed_position(position: float) -> None:
    """Raise StyleGANError unless ``position`` is a finite seed position in [0, MAX_SEED]."""
    if not (math.isfinite(position) and 0 <= position <= MAX_SEED):
        raise StyleGANError(f"seed {position} is out of range", f"seeds must be between 0 and {MAX_SEED}")


def seed_ws(G: nn.Module, seed: int, *, truncation_psi: float = 1, truncation_cutoff: int | None = None,
            class_idx: int | None = None) -> torch.Tensor:
    """ws ``[1, num_ws, w_dim]`` of one seed, as ``generate`` maps them (on G's device)."""
    z = seed_latents([seed], G.z_dim).to(module_device(G))
    cutoff = {} if truncation_cutoff is None else {"truncation_cutoff": truncation_cutoff}
    with torch.no_grad():
        return G.mapping(z, class_labels(G, class_idx, 1), truncation_psi=truncation_psi, **cutoff)


def blended_seed_ws(G: nn.Module, position: float, *, truncation_psi: float = 1,
                    truncation_cutoff: int | None = None, class_idx: int | None = None) -> torch.Tensor:
    """ws ``[1, num_ws, w_dim]`` at seed ``position``: its neighbours' ws blended linearly (see module doc)."""
    check_seed_position(position)
    settings = dict(truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, class_idx=class_idx)
    low = math.floor(position)
    frac = position - low
    ws = seed_ws(G, low, **settings)
    if frac == 0 or low == MAX_SEED:
        return ws
    return ws * (1 - frac) + seed_ws(G, low + 1, **settings) * frac
