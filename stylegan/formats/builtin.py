"""The built-in network ``"default"``: a small class-conditional generator, the same on every call.

For now it is randomly initialised (fixed seed), so its images are noise-like; a small network trained
on digits will replace it once training lands. Its shape is what that network will have: 32×32
grayscale, 10 classes.
"""

from __future__ import annotations

from typing import Any

import torch

from stylegan.networks import build_network

BUILTIN_NAMES = ("default",)
FORMAT_NAME = "built-in"

DEFAULT_KWARGS: dict[str, Any] = dict(
    z_dim=64, c_dim=10, w_dim=64, img_resolution=32, img_channels=1,
    mapping_kwargs={"num_layers": 2},
    synthesis_kwargs={"channel_base": 2048, "channel_max": 128},
)


def build_default_network() -> dict[str, Any]:
    """``{'G_ema': generator, 'format': 'built-in'}`` with bit-identical weights on every call."""
    with torch.random.fork_rng(devices=[]):  # a fixed seed without touching the caller's RNG
        torch.manual_seed(0)
        G = build_network("Generator", DEFAULT_KWARGS)
    return {"G_ema": G.cpu().eval().requires_grad_(False), "format": FORMAT_NAME}
