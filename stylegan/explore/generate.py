"""The ``generate`` job's output: PNG files per image, or one grid, named like the official tools.

File names: ``seed0042.png`` per seed, ``proj00.png`` per projected w, ``grid.png`` for a grid of everything.
The images themselves come from :mod:`stylegan.explore.render`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from stylegan.errors import StyleGANError, setting
from stylegan.explore.images import check_grid, grid_shape, make_grid, save_png, to_uint8
from stylegan.networks.stylegan3 import set_input_transform


def resolve_grid(n: int, grid_w: int | None, grid_h: int | None) -> tuple[int, int]:
    """Grid ``(cols, rows)`` for n images: near-square by default; a given width or height is kept.

    StyleGANError for a grid with too few cells or over the limits (see :func:`check_grid`).
    """
    if grid_w is None and grid_h is None:
        cols, rows = grid_shape(n)
        check_grid(cols, rows)
        return cols, rows
    if grid_w is None:
        grid_w = -(-n // grid_h)
    elif grid_h is None:
        grid_h = -(-n // grid_w)
    if grid_w * grid_h < n:
        raise StyleGANError(f"a {grid_w}x{grid_h} grid has {grid_w * grid_h} cells but there are {n} images",
                            f"choose a larger {setting('grid_w')} or {setting('grid_h')}, or fewer images")
    check_grid(grid_w, grid_h)
    return grid_w, grid_h


def write_images(
    batches: Iterator[torch.Tensor],
    outdir: str | os.PathLike,
    names: Sequence[str],
    grid: tuple[int, int] | None = None,
) -> list[Path]:
    """Write rendered batches as PNGs named ``names`` (in order), or as one ``grid.png`` of ``grid=(cols, rows)``."""
    outdir = Path(outdir)
    if grid is not None:
        images = []
        for batch in batches:
            if not images:  # the cell size is known now: refuse an oversized grid before rendering the rest
                check_grid(*grid, batch.shape[-1], batch.shape[-2])
            images.append(to_uint8(batch))
        return [save_png(make_grid(np.concatenate(images), *grid), outdir / "grid.png")]
    paths, names = [], iter(names)
    for batch in batches:
        for image in to_uint8(batch):
            paths.append(save_png(image, outdir / next(names)))
    return paths


def seed_file_name(seed: int) -> str:
    """The official per-seed file name, e.g. ``seed0042.png``."""
    return f"seed{seed:04d}.png"


def projected_file_name(index: int) -> str:
    """The official per-projection file name, e.g. ``proj00.png``."""
    return f"proj{index:02d}.png"


def parse_translate(text: str) -> tuple[float, float]:
    """``'X,Y'`` (two finite numbers) → ``(X, Y)``, for ``--translate``."""
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 2 or not all(math.isfinite(v) for v in values):
        raise StyleGANError(f"--translate {text[:60]!r} is not two numbers X,Y", "e.g. --translate 0.3,-0.1")
    return values[0], values[1]


def apply_input_transform(G: torch.nn.Module, translate: tuple[float, float] | None, rotate: float | None) -> None:
    """Shift and turn a StyleGAN3 network's images (as the official gen_images.py), when either is given.

    Left out, the network keeps the transform its file stored. Other networks have no input transform:
    asking for one is a StyleGANError.
    """
    if translate is None and rotate is None:
        return
    if rotate is not None and not math.isfinite(rotate):
        raise StyleGANError(f"--rotate {rotate} is not a finite angle", "give degrees, e.g. --rotate 15")
    set_input_transform(G, translate or (0.0, 0.0), rotate or 0.0)
