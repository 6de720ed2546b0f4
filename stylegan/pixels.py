"""The byte mapping between generator output (about [-1, 1]) and 8-bit pixels, in one place.

The official tools store ``x · 127.5 + 128`` clamped to [0, 255] and truncated (not rounded) to bytes, and
read pixels back as ``p / 127.5 − 1``; files match theirs byte for byte only with exactly this arithmetic.
"""

from __future__ import annotations

import torch


def float_to_bytes(images: torch.Tensor) -> torch.Tensor:
    """Float images in about [-1, 1] (any layout) → uint8 of the same shape and device."""
    scaled = images.detach().to(torch.float32) * 127.5 + 128
    return scaled.clamp(0, 255).to(torch.uint8)


def bytes_to_float(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels in [0, 255] (any layout) → float32 in [-1, 1], same shape and device."""
    return pixels.to(torch.float32) / 127.5 - 1
