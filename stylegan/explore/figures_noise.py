"""The paper's noise figures, and per-layer noise control without changing the networks.

Both generator families keep one stored noise map per noise-bearing layer: a ``noise_const`` buffer
``[res, res]`` that ``noise_mode='const'`` adds (scaled by the layer's learned strength). The official TF
code numbers these maps noise0, noise1, … from 4² upwards, and its noise-components figure switches noise
off in a layer by zeroing that layer's map. :func:`noise_maps_replaced` does the same here: it swaps the
buffers' values for the duration of a ``with`` block and always puts the originals back.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import PIL.Image
import torch
from torch import nn

from stylegan.devices import module_device
from stylegan.errors import StyleGANError, setting
from stylegan.explore.figures_common import (
    Box,
    check_box,
    check_canvas,
    check_seeds,
    crop,
    gray_image,
    paste,
    progress_bar,
    resized,
    seed_ws,
    seeded_torch_rng,
    synthesize,
    white_canvas,
)
from stylegan.explore.labels import check_class
from stylegan.explore.render import check_batch_size

MAX_NOISE_SAMPLES = 10_000
DETAIL_CROPS = 4  # the noise-detail figure's second column: a 2×2 block of crops


@dataclass(frozen=True)
class NoiseLayer:
    """One noise-bearing layer: its module path, resolution and stored map (a buffer ``[res, res]``)."""

    name: str
    resolution: int
    module: nn.Module


def noise_layers(G: nn.Module) -> list[NoiseLayer]:
    """G's noise-bearing layers in the official order (noise0, noise1, …): by resolution, then first to last.

    Modules are registered in the order they run, so a stable sort by resolution keeps conv0 before conv1.
    """
    found = [NoiseLayer(name, int(m.resolution), m) for name, m in G.synthesis.named_modules()
             if isinstance(getattr(m, "noise_const", None), torch.Tensor)]
    return sorted(found, key=lambda layer: layer.resolution)


@contextlib.contextmanager
def noise_maps_replaced(G: nn.Module, maps: Sequence[torch.Tensor | None]) -> Iterator[None]:
    """Inside: noise layer i's stored map reads ``maps[i]`` (None = left as it is); after: the originals.

    ``maps`` lines up with :func:`noise_layers`; each given map must have that layer's shape ``[res, res]``.
    Only the buffers' values change (in place), so G's structure and other references to it stay valid.
    """
    layers = noise_layers(G)
    if len(maps) != len(layers):
        raise ValueError(f"G has {len(layers)} noise layers but {len(maps)} maps were given")
    saved = []
    try:
        with torch.no_grad():
            for layer, new in zip(layers, maps):
                if new is None:
                    continue
                buffer = layer.module.noise_const
                saved.append((buffer, buffer.clone()))
                buffer.copy_(new.reshape(buffer.shape))
        yield
    finally:
        with torch.no_grad():
            for buffer, original in saved:
                buffer.copy_(original)


def noise_only_where(G: nn.Module, keep: Sequence[bool]) -> contextlib.AbstractContextManager:
    """Stored noise kept in the layers where ``keep[i]`` is true and zeroed (no noise) in the others."""
    layers = noise_layers(G)
    return noise_maps_replaced(G, [None if k else torch.zeros_like(layer.module.noise_const)
                                   for layer, k in zip(layers, keep)])


# --------------------------------------------------------------------------------------------------
# Noise detail: many images of one w, each with fresh noise


def check_noise_detail(G: nn.Module, seeds: Sequence[int], samples: int, detail_crop: Box,
                       class_idx: int | None) -> None:
    """Raise StyleGANError, before anything is rendered, for settings the noise-detail figure cannot draw."""
    check_seeds(seeds, setting("seeds"))
    check_class(G, class_idx)
    if not DETAIL_CROPS + 1 <= samples <= MAX_NOISE_SAMPLES:
        raise StyleGANError(f"{setting('samples')} is {samples}",
                            f"give between {DETAIL_CROPS + 1} and {MAX_NOISE_SAMPLES} (the paper: 100)")
    check_box(detail_crop, G.img_resolution, setting("detail_crop"))
    r = G.img_resolution
    check_canvas(3 * r, r * len(seeds), samples * len(seeds), "noise-detail")


def noise_samples(G: nn.Module, seed: int, samples: int, class_idx: int | None, batch_size: int = 8,
                  bar=None) -> np.ndarray:
    """``samples`` uint8 images ``[S, H, W, C]`` of seed's untruncated w, each with random noise.

    The noise comes from torch's generator seeded with ``seed`` (restored afterwards), drawn batch by batch.
    """
    ws = seed_ws(G, [seed], class_idx).expand(samples, -1, -1)
    with seeded_torch_rng(seed, module_device(G)):
        return synthesize(G, ws, "random", batch_size, bar)


def std_map(images: np.ndarray) -> np.ndarray:
    """The paper's per-pixel deviation map: std over images of each pixel's channel mean, ×4, as uint8 [H, W].

    images: uint8 ``[S, H, W, C]``. Population std (ddof 0) in float64, then ``clip(4 σ + 0.5, 0, 255)``.
    """
    return np.clip(images.astype(np.float64).mean(axis=3).std(axis=0) * 4 + 0.5, 0, 255).astype(np.uint8)


def draw_noise_detail(G: nn.Module, seeds: Sequence[int], samples: int, detail_crop: Box, *,
                      class_idx: int | None = None, batch_size: int = 8, progress: bool = False) -> np.ndarray:
    """The noise-detail figure ``[len(seeds)·R, 3R, C]``, one row per seed, R the network's resolution.

    Column 0: the first sample. Column 1: ``detail_crop`` of samples 1–4 enlarged (nearest neighbour) to
    R/2 each, in a 2×2 block. Column 2: :func:`std_map` over all ``samples`` images.
    """
    check_batch_size(batch_size)
    check_noise_detail(G, seeds, samples, detail_crop, class_idx)
    r, half = G.img_resolution, G.img_resolution // 2
    canvas = white_canvas(3 * r, r * len(seeds), G.img_channels)
    with progress_bar(samples * len(seeds), "noise-detail", progress) as bar:
        for row, row_seed in enumerate(seeds):
            images = noise_samples(G, row_seed, samples, class_idx, batch_size, bar)
            paste(canvas, images[0], 0, row * r)
            for i in range(DETAIL_CROPS):
                detail = resized(crop(images[i + 1], detail_crop), half, half, PIL.Image.NEAREST)
                paste(canvas, detail, r + (i % 2) * half, row * r + (i // 2) * half)
            paste(canvas, gray_image(std_map(images), G.img_channels), 2 * r, row * r)
    return canvas


# --------------------------------------------------------------------------------------------------
# Noise components: noise everywhere / nowhere / fine layers only / coarse layers only


NOISE_VARIANTS = ("all", "none", "fine", "coarse")


def check_noise_components(G: nn.Module, seeds: Sequence[int], fine_from: int, class_idx: int | None) -> None:
    """Raise StyleGANError, before anything is rendered, for settings the noise-components figure cannot draw."""
    check_seeds(seeds, setting("seeds"))
    check_class(G, class_idx)
    r = G.img_resolution
    levels = [2**k for k in range(3, r.bit_length())]  # 8 … R: both groups keep at least one resolution
    if fine_from not in levels:
        raise StyleGANError(f"{setting('fine_from')} is {fine_from}",
                            f"give a resolution of this {r}x{r} network above 4: {', '.join(map(str, levels))}"
                            if levels else "the network is too small to split its noise")
    check_canvas(r * len(seeds), 2 * r, len(NOISE_VARIANTS) * len(seeds), "noise-components")


def noise_variant_masks(G: nn.Module, fine_from: int) -> dict[str, list[bool]]:
    """Per noise variant, which noise layers keep their noise (fine = resolution ≥ ``fine_from``)."""
    fine = [layer.resolution >= fine_from for layer in noise_layers(G)]
    return {"all": [True] * len(fine), "none": [False] * len(fine), "fine": fine, "coarse": [not f for f in fine]}


def draw_noise_components(G: nn.Module, seeds: Sequence[int], fine_from: int, *, flips: Sequence[int] = (1,),
                          class_idx: int | None = None, batch_size: int = 8, progress: bool = False) -> np.ndarray:
    """The noise-components figure ``[2R, len(seeds)·R, C]``: one column per seed, stored ('const') noise, ψ 1.

    Each column is made of halves: top-left noise in all layers, top-right no noise, bottom-left noise in
    the fine layers only (resolution ≥ ``fine_from``), bottom-right in the coarse layers only. Images of
    the seeds at the positions in ``flips`` are mirrored left–right first (the paper mirrors its second).
    """
    check_batch_size(batch_size)
    check_noise_components(G, seeds, fine_from, class_idx)
    r, half = G.img_resolution, G.img_resolution // 2
    ws = seed_ws(G, seeds, class_idx)
    images = {}
    with progress_bar(len(NOISE_VARIANTS) * len(seeds), "noise-components", progress) as bar:
        for variant, keep in noise_variant_masks(G, fine_from).items():
            with noise_only_where(G, keep):
                rendered = synthesize(G, ws, "const", batch_size, bar)
            for i in flips:
                if 0 <= i < len(rendered):
                    rendered[i] = rendered[i, :, ::-1]
            images[variant] = rendered
    canvas = white_canvas(r * len(seeds), 2 * r, G.img_channels)
    for col in range(len(seeds)):
        x = col * r
        paste(canvas, images["all"][col][:, :half], x, 0)
        paste(canvas, images["none"][col][:, half:], x + half, 0)
        paste(canvas, images["fine"][col][:, :half], x, r)
        paste(canvas, images["coarse"][col][:, half:], x + half, r)
    return canvas
