"""Turning generator output into bytes, grids and PNG files."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from stylegan.atomic import atomic_output
from stylegan.data.transforms import parse_resolution
from stylegan.errors import StyleGANError, setting
from stylegan.limits import MAX_GRID_CELLS, MAX_IMAGE_PIXELS
from stylegan.pixels import float_to_bytes

_PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Float images ``[N, C, H, W]`` in about [-1, 1] → uint8 ``[N, H, W, C]`` in [0, 255].

    The bytes are :func:`stylegan.pixels.float_to_bytes` (the official tools' mapping), so files match
    theirs byte for byte; only the layout changes, to the channels-last one image files use.
    """
    if images.ndim != 4:
        raise ValueError(f"images must have shape [N, C, H, W], got {list(images.shape)}")
    return float_to_bytes(images).permute(0, 2, 3, 1).cpu().numpy()


def to_pil(image: np.ndarray) -> PIL.Image.Image:
    """One uint8 image ``[H, W, C]`` with C in {1, 3, 4} → a PIL image ('L', 'RGB' or 'RGBA')."""
    if image.ndim != 3 or image.shape[2] not in _PIL_MODES or image.dtype != np.uint8:
        raise StyleGANError(f"cannot store an image of shape {list(image.shape)} ({image.dtype}) as PNG",
                            "images need 1 (grayscale), 3 (RGB) or 4 (RGBA) uint8 channels")
    if image.shape[2] == 1:
        return PIL.Image.fromarray(image[:, :, 0], "L")
    return PIL.Image.fromarray(image, _PIL_MODES[image.shape[2]])


def grid_shape(n: int) -> tuple[int, int]:
    """A near-square ``(cols, rows)`` for ``n`` cells: cols = ceil(sqrt(n)), rows = ceil(n / cols)."""
    if n < 1:
        raise ValueError(f"a grid needs at least one cell, got {n}")
    cols = math.ceil(math.sqrt(n))
    return cols, math.ceil(n / cols)


GRID = setting("grid", "--grid/--grid-w/--grid-h")


def parse_grid(text: str) -> tuple[int, int]:
    """``'8x4'`` → (8, 4) columns and rows; a single number ``'4'`` means 4x4 (within :func:`check_grid`)."""
    try:
        cols, rows = parse_resolution(str(text))
    except (StyleGANError, ValueError):  # ValueError: more digits than int() takes
        raise StyleGANError(f"grid {str(text)[:40]!r} is not WIDTHxHEIGHT", "write it like 8x4") from None
    check_grid(cols, rows)
    return cols, rows


def check_grid(cols: int, rows: int, cell_w: int | None = None, cell_h: int | None = None) -> None:
    """Raise StyleGANError, before anything is rendered, for a grid over the limits in :mod:`stylegan.limits`.

    At most MAX_GRID_CELLS cells, and (given the cell size) at most MAX_IMAGE_PIXELS pixels in all: a grid
    we write is an image we would read back.
    """
    if cols < 1 or rows < 1:
        raise StyleGANError(f"grid size {cols}x{rows} has no cells", "give a width and height of at least 1")
    if cols * rows > MAX_GRID_CELLS:
        raise StyleGANError(f"a {cols}x{rows} grid has {cols * rows} cells, over the limit of {MAX_GRID_CELLS} "
                            "(MAX_GRID_CELLS)", f"choose a smaller {GRID} or fewer images")
    if cell_w is not None and cell_h is not None and cols * cell_w * rows * cell_h > MAX_IMAGE_PIXELS:
        raise StyleGANError(f"a {cols}x{rows} grid of {cell_w}x{cell_h} images is {cols * cell_w}x{rows * cell_h} "
                            f"pixels, over the limit of {MAX_IMAGE_PIXELS} pixels for one image (MAX_IMAGE_PIXELS)",
                            f"choose a smaller {GRID} or fewer images")


def make_grid(images: np.ndarray, grid_w: int, grid_h: int) -> np.ndarray:
    """Tile uint8 images ``[N, H, W, C]`` row by row into ``[grid_h * H, grid_w * W, C]``.

    Cells past the last image stay black. More images than cells raises StyleGANError.
    """
    n, h, w, c = images.shape
    check_grid(grid_w, grid_h, w, h)
    if n > grid_w * grid_h:
        raise StyleGANError(f"a {grid_w}x{grid_h} grid has {grid_w * grid_h} cells but there are {n} images",
                            f"choose a larger {setting('grid_w')} or {setting('grid_h')}, or fewer images")
    canvas = np.zeros([grid_h * h, grid_w * w, c], dtype=images.dtype)
    for i, image in enumerate(images):
        row, col = divmod(i, grid_w)
        canvas[row * h:(row + 1) * h, col * w:(col + 1) * w] = image
    return canvas


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write one uint8 image ``[H, W, C]`` as PNG atomically: readers see the old file or the new one."""
    path = Path(path)
    pil = to_pil(image)
    with atomic_output(path, "image", "check free space and permissions") as tmp:
        pil.save(tmp, format="PNG")
    return path
