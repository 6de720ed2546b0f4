"""Looping paths through latent space: keyframes per seed and linear, spherical or cubic interpolation.

A path visits K keyframes and returns to the first, so a video made from it loops without a jump.
Positions are measured in keyframes: position p in [0, K) lies between keyframe floor(p) and the next
one (keyframe K is keyframe 0 again).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.interpolate

from stylegan.errors import StyleGANError, setting
from stylegan.explore.seeds import MAX_SEED
from stylegan.limits import MAX_GRID_CELLS

INTERP_KINDS = ("linear", "slerp", "cubic")


def check_interp(kind: str) -> None:
    """Raise StyleGANError unless ``kind`` is 'linear', 'slerp' or 'cubic'."""
    if kind not in INTERP_KINDS:
        raise StyleGANError(f"unknown interpolation {kind!r}", f"use one of {', '.join(INTERP_KINDS)}")


def keyframe_latents(seeds: Sequence[int], num_keyframes: int, z_dim: int) -> np.ndarray:
    """Keyframe latents float64 ``[len(seeds), num_keyframes, z_dim]``: seed s → ``RandomState(s).randn(K, z_dim)``.

    Keyframe 0 of seed s is the official tools' z for s (the first draw of the same stream), so a path
    starts at the image ``generate --seeds s`` makes.
    """
    if num_keyframes < 2:
        raise StyleGANError(f"a looping path needs at least 2 keyframes, got {num_keyframes}",
                            f"use {setting('num_keyframes', '--keyframes')} 2 or more")
    for s in seeds:
        if not 0 <= s <= MAX_SEED:
            raise StyleGANError(f"seed {s} is out of range", f"seeds must be between 0 and {MAX_SEED}")
    return np.stack([np.random.RandomState(s).randn(num_keyframes, z_dim) for s in seeds])


def cell_seeds_from(seed: int, count: int) -> list[int]:
    """``count`` seeds drawn from one seed (``RandomState(seed)``), for a grid given by one seed and its size."""
    if count > MAX_GRID_CELLS:
        raise StyleGANError(f"{count} grid cells are over the limit of {MAX_GRID_CELLS} (MAX_GRID_CELLS)",
                            f"choose a smaller {setting('grid', '--grid/--grid-w/--grid-h')}")
    return [int(s) for s in np.random.RandomState(seed).randint(0, MAX_SEED, size=count, dtype=np.int64)]


def loop_positions(num_frames: int, num_keyframes: int, frames: np.ndarray | None = None) -> np.ndarray:
    """Positions float64 ``[F]`` of ``frames`` (default all) on a loop of ``num_keyframes`` in ``num_frames`` frames.

    Frame f sits at ``f * K / num_frames``; frame ``num_frames`` would equal frame 0, so the loop is seamless.
    """
    frames = np.arange(num_frames) if frames is None else np.asarray(frames)
    return frames.astype(np.float64) * num_keyframes / num_frames


def _slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation along the last axis; norms are interpolated linearly with the angle."""
    na = np.linalg.norm(a, axis=-1, keepdims=True)
    nb = np.linalg.norm(b, axis=-1, keepdims=True)
    cos = np.clip((a * b).sum(-1, keepdims=True) / np.maximum(na * nb, 1e-30), -1, 1)
    omega = np.arccos(cos)
    sin = np.sin(omega)
    # Nearly parallel vectors: the sine weights become 0/0, where lerp is the right limit.
    small = sin < 1e-6
    safe = np.where(small, 1, sin)
    wa = np.where(small, 1 - t, np.sin((1 - t) * omega) / safe)
    wb = np.where(small, t, np.sin(t * omega) / safe)
    return wa * a + wb * b


class LoopPath:
    """A closed path through ``keys`` float64 ``[K, *shape]``; ``path(positions)`` → ``[F, *shape]``.

    'linear' and 'slerp' go straight (or along the great circle) from keyframe to keyframe; 'cubic' is a
    periodic cubic spline through all keyframes, smooth (C²) everywhere including where the loop closes.
    """

    def __init__(self, keys: np.ndarray, kind: str = "cubic"):
        check_interp(kind)
        keys = np.asarray(keys, dtype=np.float64)
        if keys.shape[0] < 2:
            raise StyleGANError(f"a looping path needs at least 2 keyframes, got {keys.shape[0]}",
                                "give keys with 2 or more keyframes along the first axis")
        self.keys, self.kind, self.num_keyframes = keys, kind, keys.shape[0]
        if kind == "cubic":
            closed = np.concatenate([keys, keys[:1]])  # periodic splines need the first point repeated at the end
            self._spline = scipy.interpolate.CubicSpline(np.arange(len(closed)), closed, axis=0, bc_type="periodic")

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        positions = np.mod(np.asarray(positions, dtype=np.float64), self.num_keyframes)
        if self.kind == "cubic":
            return self._spline(positions)
        index = np.floor(positions).astype(np.int64)
        t = (positions - index).reshape([-1] + [1] * (self.keys.ndim - 1))
        a, b = self.keys[index], self.keys[(index + 1) % self.num_keyframes]
        if self.kind == "linear":
            return a + (b - a) * t
        return _slerp(a, b, t)
