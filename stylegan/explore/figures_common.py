"""What the paper figures share: checked settings, layer groups scaled to the network, rendering, canvases.

The StyleGAN paper drew its figures from 1024² networks (a few from 256² and 512² ones). Here every size is
scaled to the network's resolution R, so a 32² network draws the same figure smaller. Images are uint8
``[H, W, C]`` with the network's channel count C; canvases start white, as the paper's do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import PIL.Image
import torch
from torch import nn
from tqdm import tqdm

from stylegan.devices import module_device
from stylegan.errors import StyleGANError, setting
from stylegan.explore.images import to_uint8
from stylegan.explore.labels import class_labels
from stylegan.explore.seeds import MAX_SEED, seed_latents
from stylegan.explore.style_mix import GROUP_NAMES, style_groups
from stylegan.limits import MAX_GRID_CELLS, MAX_IMAGE_PIXELS, quote

WHITE = 255
MAX_PSIS = 64  # ψ values in one truncation strip (the paper: 6)


# --------------------------------------------------------------------------------------------------
# Checked settings


@dataclass(frozen=True)
class Box:
    """A crop ``x, y, width, height`` in the network's pixels."""

    x: int
    y: int
    w: int
    h: int

    def text(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"


def parse_box(text: str) -> Box:
    """``'650,180,256,256'`` → Box(x, y, w, h); StyleGANError for anything else (checked against a network later)."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 4 or not all(p.isdigit() and len(p) <= 6 for p in parts):
        raise StyleGANError(f"crop {quote(text, 40)} is not X,Y,WIDTH,HEIGHT",
                            "give four non-negative whole numbers in pixels, e.g. 0,0,32,32")
    return Box(*(int(p) for p in parts))


def check_box(box: Box, resolution: int, name: str) -> Box:
    """Raise StyleGANError unless ``box`` lies inside a ``resolution``² image and is at least 1×1."""
    if box.w < 1 or box.h < 1:
        raise StyleGANError(f"{name} {box.text()} is empty", "give a width and height of at least 1")
    if box.x + box.w > resolution or box.y + box.h > resolution:
        raise StyleGANError(f"{name} {box.text()} does not fit the network's {resolution}x{resolution} images",
                            f"keep x + width and y + height at most {resolution}")
    return box


def check_lods(lods: Sequence[int], box: Box) -> None:
    """Raise StyleGANError unless ``lods`` is non-empty and shrinking ``box`` by 2^lod leaves at least 1×1."""
    if not lods:
        raise StyleGANError(f"{setting('lods')} is empty", "give levels like 0,1,2,2,3,3")
    deepest = max(lods)
    if box.w >> deepest < 1 or box.h >> deepest < 1:
        raise StyleGANError(f"lod {deepest} shrinks the {box.w}x{box.h} crop to nothing",
                            f"keep {setting('lods')} at most {min(box.w, box.h).bit_length() - 1} for this crop")


def scaled_box(x: int, y: int, w: int, h: int, base: int, resolution: int) -> Box:
    """A crop given for ``base``² images, scaled to ``resolution``² (at least 1×1 pixel)."""
    return Box(x * resolution // base, y * resolution // base,
               max(1, w * resolution // base), max(1, h * resolution // base))


def check_psi(psi: float, name: str) -> float:
    """Raise StyleGANError unless ψ is a finite number."""
    if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not math.isfinite(psi):
        raise StyleGANError(f"{name} is {quote(psi, 40)}, not a finite number", "give a number such as 0.7")
    return float(psi)


def parse_psis(text: str) -> list[float]:
    """``'1,0.7,0.5,0,-0.5,-1'`` → finite floats in order; StyleGANError for junk, nan, inf or an empty list."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            value = float(part) if len(part) <= 32 else math.nan
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise StyleGANError(f"psi {quote(part, 40)} is not a finite number",
                                "give comma-separated numbers, e.g. 1,0.7,0.5,0,-0.5,-1")
        out.append(value)
    return check_psis(out)


def check_psis(psis: Sequence[float]) -> list[float]:
    """Raise StyleGANError unless ``psis`` holds 1 to MAX_PSIS finite numbers."""
    if not 1 <= len(psis) <= MAX_PSIS:
        raise StyleGANError(f"{len(psis)} psi values given", f"give between 1 and {MAX_PSIS}")
    return [check_psi(p, setting("psis")) for p in psis]


def check_seeds(seeds: Sequence[int], name: str, at_least: int = 1) -> list[int]:
    """Raise StyleGANError unless ``seeds`` holds at least ``at_least`` seeds, each in [0, 2³²)."""
    if len(seeds) < at_least:
        raise StyleGANError(f"{name} has {len(seeds)} seeds", f"give at least {at_least}")
    if len(seeds) > MAX_GRID_CELLS:
        raise StyleGANError(f"{name} has {len(seeds)} seeds", f"give at most {MAX_GRID_CELLS}")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
            raise StyleGANError(f"seed {quote(s, 40)} in {name} is out of range",
                                f"seeds are whole numbers from 0 to {MAX_SEED}")
    return list(seeds)


def check_canvas(width: int, height: int, images: int, what: str) -> None:
    """Refuse, before rendering, a figure over the limits: MAX_IMAGE_PIXELS pixels or MAX_GRID_CELLS images."""
    if width * height > MAX_IMAGE_PIXELS:
        raise StyleGANError(f"the {what} figure would be {width}x{height} pixels, over the limit of "
                            f"{MAX_IMAGE_PIXELS} (MAX_IMAGE_PIXELS)", "give fewer seeds, rows or columns")
    if images > MAX_GRID_CELLS:
        raise StyleGANError(f"the {what} figure would render {images} images, over the limit of {MAX_GRID_CELLS} "
                            "(MAX_GRID_CELLS)", "give fewer seeds, rows or samples")


# --------------------------------------------------------------------------------------------------
# Layer groups scaled to the network


def figure_groups(num_ws: int) -> dict[str, list[int]]:
    """w indices of the coarse, middle and fine styles for the figures.

    The paper's groups (4²–8², 16²–32², 64² and up; :func:`style_groups`) when the network has all three.
    A network under 64² has no fine styles in that sense, so its levels (two ws each) are spread instead:
    the first level is coarse, the last fine, the ones between middle (a 32² network: 4², 8²–16², 32²).
    """
    paper = style_groups(num_ws)
    if all(paper[name] for name in GROUP_NAMES):
        return paper
    levels = [list(range(k, min(k + 2, num_ws))) for k in range(0, num_ws, 2)]
    groups: dict[str, list[int]] = {name: [] for name in GROUP_NAMES}
    groups["coarse"] = levels[0]
    if len(levels) > 1:
        groups["fine"] = levels[-1]
        groups["middle"] = [k for level in levels[1:-1] for k in level]
    return groups


def first_fine_w(num_ws: int) -> int:
    """Index of the first fine w: the default truncation cutoff (8 for a 1024² network, as in the paper)."""
    fine = figure_groups(num_ws)["fine"]
    return fine[0] if fine else num_ws


def fine_from_resolution(num_ws: int) -> int:
    """The lowest resolution of the fine styles (64 for networks of 64² and up): where fine noise starts."""
    return 2 ** (2 + first_fine_w(num_ws) // 2)


def resolve_style_spec(groups: Iterable[str], indices: Iterable[int], num_ws: int, name: str) -> list[int]:
    """Group names (resolved with :func:`figure_groups`) and w indices → sorted unique indices below num_ws."""
    available = figure_groups(num_ws)
    chosen = set(indices)
    for group in groups:
        chosen.update(available[group])
    outside = sorted(i for i in chosen if not 0 <= i < num_ws)
    if outside:
        raise StyleGANError(f"{name}: style index {outside[0]} is beyond this network's {num_ws} ws",
                            f"use indices 0-{num_ws - 1}")
    if not chosen:
        raise StyleGANError(f"{name} mixes no styles for a network with {num_ws} ws",
                            "give w indices like 0-3 instead of an empty group")
    return sorted(chosen)


# --------------------------------------------------------------------------------------------------
# Rendering


def seed_ws(G: nn.Module, seeds: Sequence[int], class_idx: int | None) -> torch.Tensor:
    """Untruncated ws ``[N, num_ws, w_dim]`` on G's device, row i for ``seeds[i]`` (the official tools' z).

    One seed per mapping call: a batch can round differently on some CPUs, and a seed's w must not depend on
    the other seeds of the figure.
    """
    device = module_device(G)
    rows = []
    with torch.no_grad():
        for seed in seeds:
            z = seed_latents([seed], G.z_dim).to(device)
            rows.append(G.mapping(z, class_labels(G, class_idx, 1), truncation_psi=1))
    return torch.cat(rows)


def synthesize(G: nn.Module, ws: torch.Tensor, noise_mode: str, batch_size: int, bar: tqdm | None = None
               ) -> np.ndarray:
    """ws ``[N, num_ws, w_dim]`` → uint8 images ``[N, H, W, C]``, ``batch_size`` at a time."""
    out = []
    with torch.no_grad():
        for start in range(0, len(ws), batch_size):
            images = G.synthesis(ws[start:start + batch_size], noise_mode=noise_mode)
            out.append(to_uint8(images))
            if bar is not None:
                bar.update(len(images))
    return np.concatenate(out) if out else np.zeros([0, G.img_resolution, G.img_resolution, G.img_channels],
                                                    np.uint8)


class seeded_torch_rng:
    """Inside: torch's global generators (CPU and G's CUDA device) seeded with ``seed``; outside: as before.

    The figures that draw random noise do it from their own seed, so a figure is the same every time.
    """

    def __init__(self, seed: int, device: torch.device):
        devices = [device.index or 0] if device.type == "cuda" else []
        self._fork = torch.random.fork_rng(devices=devices)
        self._seed = seed

    def __enter__(self) -> None:
        self._fork.__enter__()
        torch.manual_seed(self._seed)

    def __exit__(self, *exc) -> None:
        self._fork.__exit__(*exc)


def progress_bar(total: int, desc: str, progress: bool) -> tqdm:
    return tqdm(total=total, unit="img", desc=desc, disable=not progress)


# --------------------------------------------------------------------------------------------------
# Canvases


def white_canvas(width: int, height: int, channels: int) -> np.ndarray:
    """A white uint8 canvas ``[height, width, channels]``."""
    return np.full([height, width, channels], WHITE, dtype=np.uint8)


def paste(canvas: np.ndarray, image: np.ndarray, x: int, y: int) -> None:
    """Copy uint8 ``image`` [h, w, C] onto ``canvas`` with its top-left corner at (x, y)."""
    h, w = image.shape[:2]
    canvas[y:y + h, x:x + w] = image


def crop(image: np.ndarray, box: Box) -> np.ndarray:
    """The ``box`` part of ``image`` [H, W, C]."""
    return image[box.y:box.y + box.h, box.x:box.x + box.w]


def resized(image: np.ndarray, width: int, height: int, resample: int) -> np.ndarray:
    """uint8 ``image`` [h, w, C] resized with PIL (``resample``: PIL.Image.LANCZOS, NEAREST, ...)."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    planes = [np.asarray(PIL.Image.fromarray(np.ascontiguousarray(image[:, :, k]), "L").resize(
        (width, height), resample)) for k in range(image.shape[2])]  # per channel: any channel count works
    return np.stack(planes, axis=2)


def gray_image(values: np.ndarray, channels: int) -> np.ndarray:
    """uint8 ``values`` [H, W] as an image [H, W, channels] (the same value in every channel)."""
    return np.repeat(values[:, :, None], channels, axis=2)
