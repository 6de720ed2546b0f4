"""The snapshot image grids of a run: ``reals.png`` once, then ``fakes*.png`` from fixed latents.

Layout (the same cells as the official training's grids, so runs compare side by side): the grid is
``clamp(7680 // resolution, 7, 32)`` cells wide and ``clamp(4320 // resolution, 4, 32)`` high (about a
4K screen) unless a size is given. Each row shows one label; labels take turns row by row in sorted
order, and a label's images (shuffled once with the seed) continue from row to row where the previous
row of that label stopped, wrapping around. Without labels all images form one group, so the grid is a
seeded shuffle of the dataset read row by row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import PIL.Image
import torch

from stylegan.atomic import atomic_output
from stylegan.pixels import float_to_bytes

_PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def grid_size(resolution: int) -> tuple[int, int]:
    """(columns, rows) that fill about a 7680×4320 screen with ``resolution``² cells, within 7–32 × 4–32."""
    return _clamp(7680 // resolution, 7, 32), _clamp(4320 // resolution, 4, 32)


def label_groups(dataset) -> list[list[int]]:
    """Dataset indices grouped by label, groups in sorted label order; one group without labels.

    Labels are compared on their elements from the last to the first, which puts one-hot classes in
    class order.
    """
    if not dataset.has_labels:
        return [list(range(len(dataset)))]
    by_label: dict[tuple, list[int]] = {}
    for index in range(len(dataset)):
        key = tuple(np.asarray(dataset.get_label(index)).reshape(-1)[::-1].tolist())
        by_label.setdefault(key, []).append(index)
    return [by_label[key] for key in sorted(by_label)]


def grid_layout(dataset, resolution: int, seed: int = 0,
                size: tuple[int, int] | None = None) -> tuple[tuple[int, int], list[int]]:
    """((columns, rows), dataset index of each cell, row by row); see the module docstring."""
    columns, rows = size if size is not None else grid_size(resolution)
    shuffler = np.random.RandomState(seed)
    groups = [[members[k] for k in shuffler.permutation(len(members))] for members in label_groups(dataset)]
    cells = []
    for row in range(rows):
        members = groups[row % len(groups)]
        start = (row // len(groups)) * columns  # cells this label filled in its earlier rows
        cells += [members[(start + column) % len(members)] for column in range(columns)]
    return (columns, rows), cells


def tile(images: np.ndarray, columns: int, rows: int) -> np.ndarray:
    """uint8 images ``[columns·rows, C, H, W]``, row by row → one image ``[rows·H, columns·W, C]``."""
    count, channels, height, width = images.shape
    assert count == columns * rows, (count, columns, rows)
    blocks = images.reshape(rows, columns, channels, height, width)
    return blocks.transpose(0, 3, 1, 4, 2).reshape(rows * height, columns * width, channels)


def write_png(image: np.ndarray, path: Path) -> None:
    """One uint8 image ``[H, W, C]`` (C = 1, 3 or 4) as a PNG file, atomically."""
    channels = image.shape[2]
    pil = PIL.Image.fromarray(image[:, :, 0] if channels == 1 else image, _PIL_MODES[channels])
    with atomic_output(path, "snapshot image", "check free space and permissions of the run folder") as tmp:
        pil.save(tmp, format="PNG")


def grid_latents(seed: int, count: int, z_dim: int) -> torch.Tensor:
    """The fixed latents ``[count, z_dim]`` (float32) of the fakes grids, one per cell."""
    return torch.from_numpy(np.random.RandomState(seed).randn(count, z_dim)).to(torch.float32)


class GridSource(Protocol):
    """What the grids read from the training loop's Trainer."""

    dataset: Any  # has_labels, get_label(i), [i] → (uint8 [C, H, W], label), resolution
    opts: Any  # .grid: [columns, rows] or None
    G: torch.nn.Module  # .z_dim
    G_ema: torch.nn.Module
    device: torch.device


class SnapshotImages:
    """Writes ``reals.png`` when made; called with a file name, writes that run's fakes grid."""

    def __init__(self, trainer: GridSource, run_dir: Path, seed: int = 0, batch: int = 32):
        dataset = trainer.dataset
        size = tuple(trainer.opts.grid) if trainer.opts.grid else None
        (self.columns, self.rows), cells = grid_layout(dataset, dataset.resolution, seed, size)
        self.run_dir, self.batch = run_dir, batch
        self.labels = torch.from_numpy(np.stack([np.asarray(dataset.get_label(i)) for i in cells])).float()
        self.z = grid_latents(seed, len(cells), trainer.G.z_dim)
        reals = np.stack([np.asarray(dataset[i][0]) for i in cells])
        write_png(tile(reals, self.columns, self.rows), run_dir / "reals.png")

    @torch.no_grad()
    def fakes(self, G: torch.nn.Module, device: torch.device) -> np.ndarray:
        """G's images of the grid's latents and labels, uint8 ``[cells, C, H, W]`` (noise 'const')."""
        pieces = []
        for first in range(0, len(self.z), self.batch):
            z = self.z[first:first + self.batch].to(device)
            c = self.labels[first:first + self.batch].to(device)
            pieces.append(float_to_bytes(G(z, c, noise_mode="const")).cpu().numpy())
        return np.concatenate(pieces)

    def __call__(self, trainer: GridSource, name: str) -> None:
        images = self.fakes(trainer.G_ema, trainer.device)
        write_png(tile(images, self.columns, self.rows), self.run_dir / name)
