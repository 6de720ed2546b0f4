"""The StyleGAN paper's figures, and the StyleGAN2 README's example grids, from any loaded generator.

Each figure is one image, drawn with the official figure script's seeds, ψ and layer ranges unless
:class:`FigureSettings` says otherwise, and scaled to the network (see :mod:`stylegan.explore.figures_common`).

==================  ===================================================================================
uncurated           paper fig. 2: a multi-resolution grid of uncurated images (FFHQ layout, seed 5, ψ 0.7)
style-mixing        fig. 3: rows take coarse / middle / fine styles from the columns
noise-detail        fig. 4: one w with fresh noise: image, crops of four more, per-pixel std map
noise-components    fig. 5: noise in all layers / none / fine layers only / coarse layers only
truncation          fig. 8: ψ ∈ {1, 0.7, 0.5, 0, −0.5, −1} for two seeds
uncurated-bedrooms  fig. 10 (bedrooms layout); -cars fig. 11; -cats fig. 12
sg2-uncurated       StyleGAN2 README: seeds 6600–6625, ψ 0.5 (its paper's fig. 12); sg2-curated, -cars
==================  ===================================================================================

Python use::

    from stylegan.explore.figures import FigureSettings, write_figures
    write_figures(G, ["truncation", "style-mixing"], FigureSettings(seeds=[1, 2]), "out")
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Sequence

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
    check_psi,
    check_psis,
    check_seeds,
    crop,
    fine_from_resolution,
    first_fine_w,
    paste,
    progress_bar,
    check_lods,
    resolve_style_spec,
    resized,
    scaled_box,
    seed_ws,
    seeded_torch_rng,
    synthesize,
    white_canvas,
)
from stylegan.explore.figures_noise import (
    check_noise_components,
    check_noise_detail,
    draw_noise_components,
    draw_noise_detail,
    noise_layers,
    noise_maps_replaced,
)
from stylegan.explore.images import check_grid, grid_shape, make_grid, save_png, to_uint8
from stylegan.explore.labels import check_class, class_labels
from stylegan.explore.render import check_batch_size
from stylegan.explore.style_mix import StyleSpec, parse_style_spec
from stylegan.networks.layers import truncate

# --------------------------------------------------------------------------------------------------
# Uncurated multi-resolution grid (the "lods" layout)


@dataclass(frozen=True)
class UncuratedLayout:
    """Where the paper's uncurated grids put their images; crops are for ``base``² images and get scaled."""

    seed: int
    rows: int  # rows of full-size images; a column at lod l holds rows · 2^l images of size / 2^l
    lods: tuple[int, ...]
    crop: tuple[int, int, int, int]  # x, y, width, height at base resolution
    base: int


UNCURATED_LAYOUTS = {
    "uncurated": UncuratedLayout(5, 3, (0, 1, 2, 2, 3, 3), (0, 0, 1024, 1024), 1024),
    "uncurated-bedrooms": UncuratedLayout(0, 5, (0, 0, 1, 1, 2, 2, 2), (0, 0, 256, 256), 256),
    "uncurated-cars": UncuratedLayout(2, 4, (0, 1, 2, 2, 3, 3), (0, 64, 512, 384), 512),
    "uncurated-cats": UncuratedLayout(1, 5, (0, 0, 1, 1, 2, 2, 2), (0, 0, 256, 256), 256),
}
UNCURATED_PSI = 0.7  # v1's default truncation, which the paper's uncurated figures used


def uncurated_cells(rows: int, lods: Sequence[int], box: Box) -> list[tuple[int, int, int, int]]:
    """``(x, y, width, height)`` of every cell, in the order images fill them: column by column, top down."""
    cells, x = [], 0
    for lod in lods:
        w, h = box.w >> lod, box.h >> lod
        cells += [(x, row * h, w, h) for row in range(rows << lod)]
        x += w
    return cells


def check_uncurated(G: nn.Module, seed: int, rows: int, lods: Sequence[int], box: Box, psi: float,
                    cutoff: int | None, class_idx: int | None) -> None:
    """Raise StyleGANError, before anything is rendered, for settings the uncurated grid cannot draw."""
    check_seeds([seed], setting("seed"))
    check_class(G, class_idx)
    check_psi(psi, setting("psi"))
    if cutoff is not None and not 0 <= cutoff <= G.num_ws:
        raise StyleGANError(f"{setting('cutoff')} is {cutoff}", f"give 0 to {G.num_ws} (the network's ws)")
    check_box(box, G.img_resolution, setting("crop"))
    if rows < 1:
        raise StyleGANError(f"{setting('grid_rows')} is {rows}", "give at least 1")
    check_lods(lods, box)
    images = sum(rows << lod for lod in lods)
    check_canvas(sum(box.w >> lod for lod in lods), box.h * rows, images, "uncurated")


def draw_uncurated(G: nn.Module, seed: int, rows: int, lods: Sequence[int], box: Box, *, psi: float = UNCURATED_PSI,
                   cutoff: int | None = None, class_idx: int | None = None, batch_size: int = 8,
                   progress: bool = False) -> np.ndarray:
    """The uncurated grid ``[rows · box.h, Σ box.w / 2^lod, C]``: one column per entry of ``lods``.

    Latents are ``RandomState(seed).randn(count, z_dim)`` in one stream, as in the official script; images are
    truncated by ψ on the first ``cutoff`` ws (None: all), get random noise (torch seeded with ``seed``),
    are cropped to ``box`` and shrunk by 2^lod (Lanczos), filling each column top down.
    """
    check_batch_size(batch_size)
    check_uncurated(G, seed, rows, lods, box, psi, cutoff, class_idx)
    cells = uncurated_cells(rows, lods, box)
    device = module_device(G)
    z = torch.from_numpy(np.random.RandomState(seed).randn(len(cells), G.z_dim)).to(torch.float32)
    canvas = white_canvas(sum(box.w >> lod for lod in lods), rows * box.h, G.img_channels)
    with progress_bar(len(cells), "uncurated", progress) as bar, seeded_torch_rng(seed, device), torch.no_grad():
        for start in range(0, len(cells), batch_size):
            zb = z[start:start + batch_size].to(device)
            ws = G.mapping(zb, class_labels(G, class_idx, len(zb)), truncation_psi=psi, truncation_cutoff=cutoff)
            images = to_uint8(G.synthesis(ws, noise_mode="random"))
            bar.update(len(images))
            for image, (x, y, w, h) in zip(images, cells[start:start + batch_size]):
                paste(canvas, resized(crop(image, box), w, h, PIL.Image.LANCZOS), x, y)
    return canvas


# --------------------------------------------------------------------------------------------------
# Style mixing


MIXING_COLS = (639, 701, 687, 615, 2268)  # sources of styles, across the top
MIXING_ROWS = (888, 829, 1898, 1733, 1614, 845)  # destinations, down the left
MIXING_STYLES = ("coarse",) * 3 + ("middle",) * 2 + ("fine",)  # what each row takes from the columns


def resolve_row_styles(G: nn.Module, specs: Sequence[StyleSpec], rows: int) -> list[list[int]]:
    """One w-index list per row: a single spec applies to every row, otherwise one spec per row."""
    if len(specs) == 1:
        specs = list(specs) * rows
    if len(specs) != rows:
        raise StyleGANError(f"{setting('mix_styles')} has {len(specs)} entries for {rows} rows",
                            "give one entry per row (separated by /), or a single one for all rows")
    return [resolve_style_spec(spec.groups, spec.indices, G.num_ws, f"{setting('mix_styles')} row {i}")
            for i, spec in enumerate(specs)]


def parse_mix_styles(text: str) -> list[StyleSpec]:
    """``--mix-styles``: one style list per row, separated by ``/``, e.g. ``coarse/coarse/middle/0-3,8``."""
    return [parse_style_spec(part) for part in str(text).split("/")]


def check_style_mixing(G: nn.Module, row_seeds: Sequence[int], col_seeds: Sequence[int],
                       row_styles: Sequence[Sequence[int]], class_idx: int | None) -> None:
    """Raise StyleGANError, before anything is rendered, for settings the style-mixing figure cannot draw."""
    check_seeds(row_seeds, setting("rows"))
    check_seeds(col_seeds, setting("cols"))
    check_class(G, class_idx)
    if len(row_styles) != len(row_seeds):
        raise StyleGANError(f"{len(row_styles)} style lists for {len(row_seeds)} rows",
                            f"give one {setting('mix_styles')} entry per row")
    for i, styles in enumerate(row_styles):
        if not styles or any(not 0 <= k < G.num_ws for k in styles):
            raise StyleGANError(f"row {i}'s styles {list(styles)[:8]} do not fit the network's {G.num_ws} ws",
                                f"give indices 0-{G.num_ws - 1}")
    r = G.img_resolution
    n_rows, n_cols = len(row_seeds) + 1, len(col_seeds) + 1
    check_canvas(r * n_cols, r * n_rows, n_rows * n_cols, "style-mixing")


def draw_style_mixing(G: nn.Module, row_seeds: Sequence[int], col_seeds: Sequence[int],
                      row_styles: Sequence[Sequence[int]], *, class_idx: int | None = None, batch_size: int = 8,
                      progress: bool = False) -> np.ndarray:
    """The style-mixing figure ``[(rows+1)·R, (cols+1)·R, C]``, untruncated ws, stored noise.

    Column seeds' images across the top, row seeds' down the left (corner blank). Cell (i, j) is row i's
    ws with the indices ``row_styles[i]`` taken from column j's ws.
    """
    check_batch_size(batch_size)
    check_style_mixing(G, row_seeds, col_seeds, row_styles, class_idx)
    r = G.img_resolution
    rows_ws, cols_ws = seed_ws(G, row_seeds, class_idx), seed_ws(G, col_seeds, class_idx)
    canvas = white_canvas(r * (len(col_seeds) + 1), r * (len(row_seeds) + 1), G.img_channels)
    total = len(row_seeds) + len(col_seeds) + len(row_seeds) * len(col_seeds)
    with progress_bar(total, "style-mixing", progress) as bar:
        for j, image in enumerate(synthesize(G, cols_ws, "const", batch_size, bar)):
            paste(canvas, image, (j + 1) * r, 0)
        for i, image in enumerate(synthesize(G, rows_ws, "const", batch_size, bar)):
            paste(canvas, image, 0, (i + 1) * r)
            mixed = rows_ws[i:i + 1].repeat(len(col_seeds), 1, 1)
            styles = list(row_styles[i])
            mixed[:, styles] = cols_ws[:, styles]
            for j, cell in enumerate(synthesize(G, mixed, "const", batch_size, bar)):
                paste(canvas, cell, (j + 1) * r, (i + 1) * r)
    return canvas


# --------------------------------------------------------------------------------------------------
# Truncation trick


TRUNCATION_SEEDS = (91, 388)
TRUNCATION_PSIS = (1, 0.7, 0.5, 0, -0.5, -1)


def check_truncation(G: nn.Module, seeds: Sequence[int], psis: Sequence[float], class_idx: int | None) -> None:
    """Raise StyleGANError, before anything is rendered, for settings the truncation strip cannot draw."""
    check_seeds(seeds, setting("seeds"))
    check_psis(psis)
    check_class(G, class_idx)
    r = G.img_resolution
    check_canvas(r * len(psis), r * len(seeds), len(psis) * len(seeds), "truncation")


def draw_truncation(G: nn.Module, seeds: Sequence[int], psis: Sequence[float], *, class_idx: int | None = None,
                    batch_size: int = 8, progress: bool = False) -> np.ndarray:
    """The truncation strip ``[len(seeds)·R, len(psis)·R, C]``: row = seed, column = ψ, on every w.

    Cell (i, j) synthesizes ``w_avg + ψ_j (w_i − w_avg)`` with stored noise; ψ 0 gives the average image.
    """
    check_batch_size(batch_size)
    check_truncation(G, seeds, psis, class_idx)
    r = G.img_resolution
    ws = seed_ws(G, seeds, class_idx)
    canvas = white_canvas(r * len(psis), r * len(seeds), G.img_channels)
    with progress_bar(len(seeds) * len(psis), "truncation", progress) as bar:
        for i in range(len(seeds)):
            row = torch.cat([truncate(ws[i:i + 1], G.mapping.w_avg, psi, None) for psi in psis])
            for j, image in enumerate(synthesize(G, row, "const", batch_size, bar)):
                paste(canvas, image, j * r, i * r)
    return canvas


# --------------------------------------------------------------------------------------------------
# StyleGAN2 README example grids


@dataclass(frozen=True)
class SeedGridPreset:
    seeds: tuple[int, ...]
    psi: float


SEED_GRID_PRESETS = {
    "sg2-uncurated": SeedGridPreset(tuple(range(6600, 6626)), 0.5),
    "sg2-curated": SeedGridPreset((66, 230, 389, 1518), 1.0),
    "sg2-uncurated-cars": SeedGridPreset(tuple(range(6000, 6026)), 0.5),
}


def check_seed_grid(G: nn.Module, seeds: Sequence[int], psi: float, class_idx: int | None) -> None:
    """Raise StyleGANError, before anything is rendered, for settings a seed grid cannot draw."""
    check_seeds(seeds, setting("seeds"))
    check_psi(psi, setting("psi"))
    check_class(G, class_idx)
    cols, rows = grid_shape(len(seeds))
    check_grid(cols, rows, G.img_resolution, G.img_resolution)


def seed_noise_maps(rnd: np.random.RandomState, G: nn.Module) -> list[torch.Tensor]:
    """One map ``[res, res]`` per noise layer (official order) drawn from ``rnd``, as StyleGAN2's generator
    script does after drawing z (so a converted TF network gives its README's images)."""
    device = module_device(G)
    return [torch.from_numpy(rnd.randn(layer.resolution, layer.resolution)).to(device, torch.float32)
            for layer in noise_layers(G)]


def seed_grid_images(G: nn.Module, seeds: Sequence[int], psi: float, *, class_idx: int | None = None,
                     progress: bool = False) -> np.ndarray:
    """uint8 images ``[N, H, W, C]``, one per seed as StyleGAN2's ``generate-images``: z then every noise map
    drawn from ``RandomState(seed)``, ψ on every w, that noise stored ('const')."""
    check_seed_grid(G, seeds, psi, class_idx)
    device = module_device(G)
    out = []
    with progress_bar(len(seeds), "seeds", progress) as bar, torch.no_grad():
        for seed in seeds:
            stream = np.random.RandomState(seed)  # z first, then the noise maps
            z = torch.from_numpy(stream.randn(1, G.z_dim)).to(device, torch.float32)
            with noise_maps_replaced(G, seed_noise_maps(stream, G)):
                ws = G.mapping(z, class_labels(G, class_idx, 1), truncation_psi=psi, truncation_cutoff=None)
                out.append(to_uint8(G.synthesis(ws, noise_mode="const"))[0])
            bar.update(1)
    return np.stack(out)


def draw_seed_grid(G: nn.Module, seeds: Sequence[int], psi: float, *, class_idx: int | None = None,
                   batch_size: int = 1, progress: bool = False) -> np.ndarray:
    """:func:`seed_grid_images` tiled row by row into a near-square grid (empty cells black).

    ``batch_size`` is accepted like the other figures' and not needed: each seed brings its own noise maps,
    so images are rendered one at a time.
    """
    check_batch_size(batch_size)
    images = seed_grid_images(G, seeds, psi, class_idx=class_idx, progress=progress)
    return make_grid(images, *grid_shape(len(seeds)))


# --------------------------------------------------------------------------------------------------
# The figure table


@dataclass
class FigureSettings:
    """Overrides of the figures' defaults; None keeps the official value (scaled to the network).

    A setting applies to every chosen figure that has it (see :attr:`Figure.uses`).
    """

    seed: int | None = None  # uncurated grids: the one seed of the latent stream
    seeds: list[int] | None = None  # noise-detail, noise-components, truncation, sg2-*: one row / cell per seed
    rows: list[int] | None = None  # style-mixing: the row (destination) seeds
    cols: list[int] | None = None  # style-mixing: the column (source) seeds
    mix_styles: list[StyleSpec] | None = None  # style-mixing: what each row takes from the columns
    psi: float | None = None  # uncurated grids and sg2-*: truncation ψ
    cutoff: int | None = None  # uncurated grids: truncate the first N ws (default: up to the fine ones)
    psis: list[float] | None = None  # truncation: the columns' ψ
    lods: list[int] | None = None  # uncurated grids: one column per entry, images shrunk by 2^lod
    grid_rows: int | None = None  # uncurated grids: rows of full-size images
    crop: Box | None = None  # uncurated grids: the part of each image shown
    detail_crop: Box | None = None  # noise-detail: the enlarged part
    samples: int | None = None  # noise-detail: images per seed for the std map
    fine_from: int | None = None  # noise-components: the lowest resolution whose noise counts as fine
    class_idx: int | None = None
    batch_size: int = 8
    progress: bool = False

    def given(self) -> set[str]:
        """Names of the figure-specific settings that are set (not None)."""
        return {f.name for f in fields(self) if f.name in FIGURE_SETTINGS and getattr(self, f.name) is not None}


FIGURE_SETTINGS = ("seed", "seeds", "rows", "cols", "mix_styles", "psi", "cutoff", "psis", "lods", "grid_rows",
                   "crop", "detail_crop", "samples", "fine_from")


@dataclass(frozen=True)
class Figure:
    """One figure: its file, a one-line summary, the settings it reads, and how its arguments are resolved."""

    name: str
    file_name: str
    summary: str
    uses: tuple[str, ...]
    arguments: Callable[[nn.Module, FigureSettings], dict[str, Any]]  # resolved (defaults filled in) and checked
    draw: Callable[..., np.ndarray]


def _uncurated_arguments(name: str) -> Callable[[nn.Module, FigureSettings], dict[str, Any]]:
    layout = UNCURATED_LAYOUTS[name]

    def arguments(G: nn.Module, s: FigureSettings) -> dict[str, Any]:
        box = s.crop if s.crop is not None else scaled_box(*layout.crop, layout.base, G.img_resolution)
        args = dict(seed=_pick(s.seed, layout.seed), rows=_pick(s.grid_rows, layout.rows),
                    lods=list(_pick(s.lods, layout.lods)), box=box, psi=_pick(s.psi, UNCURATED_PSI),
                    cutoff=_pick(s.cutoff, first_fine_w(G.num_ws)), class_idx=s.class_idx)
        check_uncurated(G, **args)
        return args

    return arguments


def _style_mixing_arguments(G: nn.Module, s: FigureSettings) -> dict[str, Any]:
    rows, cols = list(_pick(s.rows, MIXING_ROWS)), list(_pick(s.cols, MIXING_COLS))
    check_seeds(rows, setting("rows"))
    specs = s.mix_styles if s.mix_styles is not None else [StyleSpec((g,), ()) for g in MIXING_STYLES]
    if s.mix_styles is None and len(rows) != len(MIXING_STYLES):
        raise StyleGANError(f"{setting('rows')} has {len(rows)} seeds but the paper's figure has "
                            f"{len(MIXING_STYLES)} style rows", f"give {setting('mix_styles')} for your rows, "
                            "e.g. one entry for all rows: coarse")
    args = dict(row_seeds=rows, col_seeds=cols, row_styles=resolve_row_styles(G, specs, len(rows)),
                class_idx=s.class_idx)
    check_style_mixing(G, **args)
    return args


def _noise_detail_arguments(G: nn.Module, s: FigureSettings) -> dict[str, Any]:
    box = s.detail_crop if s.detail_crop is not None else scaled_box(650, 180, 256, 256, 1024, G.img_resolution)
    args = dict(seeds=list(_pick(s.seeds, (1157, 1012))), samples=_pick(s.samples, 100), detail_crop=box,
                class_idx=s.class_idx)
    check_noise_detail(G, **args)
    return args


def _noise_components_arguments(G: nn.Module, s: FigureSettings) -> dict[str, Any]:
    args = dict(seeds=list(_pick(s.seeds, (1967, 1555))), fine_from=_pick(s.fine_from, fine_from_resolution(G.num_ws)),
                class_idx=s.class_idx)
    check_noise_components(G, **args)
    return args


def _truncation_arguments(G: nn.Module, s: FigureSettings) -> dict[str, Any]:
    args = dict(seeds=list(_pick(s.seeds, TRUNCATION_SEEDS)), psis=list(_pick(s.psis, TRUNCATION_PSIS)),
                class_idx=s.class_idx)
    check_truncation(G, **args)
    return args


def _seed_grid_arguments(name: str) -> Callable[[nn.Module, FigureSettings], dict[str, Any]]:
    preset = SEED_GRID_PRESETS[name]

    def arguments(G: nn.Module, s: FigureSettings) -> dict[str, Any]:
        args = dict(seeds=list(_pick(s.seeds, preset.seeds)), psi=_pick(s.psi, preset.psi), class_idx=s.class_idx)
        check_seed_grid(G, **args)
        return args

    return arguments


def _pick(value: Any, default: Any) -> Any:
    return default if value is None else value


_UNCURATED_USES = ("seed", "grid_rows", "lods", "crop", "psi", "cutoff")

FIGURES: dict[str, Figure] = {f.name: f for f in [
    Figure("uncurated", "figure02-uncurated-ffhq.png",
           "uncurated multi-resolution grid (paper fig. 2, FFHQ layout: seed 5, psi 0.7)",
           _UNCURATED_USES, _uncurated_arguments("uncurated"), draw_uncurated),
    Figure("style-mixing", "figure03-style-mixing.png",
           "style mixing: rows take coarse / middle / fine styles from the columns (fig. 3)",
           ("rows", "cols", "mix_styles"), _style_mixing_arguments, draw_style_mixing),
    Figure("noise-detail", "figure04-noise-detail.png",
           "one w with fresh noise: an image, crops of four more, the per-pixel std map (fig. 4)",
           ("seeds", "samples", "detail_crop"), _noise_detail_arguments, draw_noise_detail),
    Figure("noise-components", "figure05-noise-components.png",
           "noise in all layers / none / fine layers only / coarse layers only (fig. 5)",
           ("seeds", "fine_from"), _noise_components_arguments, draw_noise_components),
    Figure("truncation", "figure08-truncation-trick.png",
           "truncation trick: psi 1, 0.7, 0.5, 0, -0.5, -1 for two seeds (fig. 8)",
           ("seeds", "psis"), _truncation_arguments, draw_truncation),
    Figure("uncurated-bedrooms", "figure10-uncurated-bedrooms.png",
           "uncurated grid, bedrooms layout (fig. 10: seed 0, 5 rows)",
           _UNCURATED_USES, _uncurated_arguments("uncurated-bedrooms"), draw_uncurated),
    Figure("uncurated-cars", "figure11-uncurated-cars.png",
           "uncurated grid, cars layout (fig. 11: seed 2, 4:3 crop)",
           _UNCURATED_USES, _uncurated_arguments("uncurated-cars"), draw_uncurated),
    Figure("uncurated-cats", "figure12-uncurated-cats.png",
           "uncurated grid, cats layout (fig. 12: seed 1, 5 rows)",
           _UNCURATED_USES, _uncurated_arguments("uncurated-cats"), draw_uncurated),
    Figure("sg2-uncurated", "stylegan2-uncurated-ffhq.png",
           "StyleGAN2 README: uncurated seeds 6600-6625, psi 0.5",
           ("seeds", "psi"), _seed_grid_arguments("sg2-uncurated"), draw_seed_grid),
    Figure("sg2-curated", "stylegan2-curated-ffhq.png",
           "StyleGAN2 README: curated seeds 66, 230, 389, 1518, psi 1",
           ("seeds", "psi"), _seed_grid_arguments("sg2-curated"), draw_seed_grid),
    Figure("sg2-uncurated-cars", "stylegan2-uncurated-cars.png",
           "StyleGAN2 README: uncurated cars seeds 6000-6025, psi 0.5",
           ("seeds", "psi"), _seed_grid_arguments("sg2-uncurated-cars"), draw_seed_grid),
]}
PAPER_FIGURES = ("uncurated", "style-mixing", "noise-detail", "noise-components", "truncation")
FIGURE_GROUPS = {"paper": PAPER_FIGURES, "all": tuple(FIGURES)}


def figure_list() -> list[str]:
    """One line per figure: name, file and summary (what ``stylegan figures --list`` prints)."""
    width = max(map(len, FIGURES))
    return [f"{f.name:<{width}}  {f.summary}  [{f.file_name}]" for f in FIGURES.values()]


def resolve_figure_names(names: Sequence[str]) -> list[str]:
    """Figure and group names ('paper', 'all') → figure names in order, each once; none given = 'paper'."""
    out: list[str] = []
    for name in names or ["paper"]:
        key = name.strip().lower()
        chosen = FIGURE_GROUPS.get(key, (key,))
        for figure in chosen:
            if figure not in FIGURES:
                raise StyleGANError(f"unknown figure {name[:40]!r}",
                                    f"choose from {', '.join([*FIGURES, *FIGURE_GROUPS])}")
            if figure not in out:
                out.append(figure)
    return out


def plan_figures(G: nn.Module, names: Sequence[str], settings: FigureSettings) -> list[tuple[Figure, dict]]:
    """Every chosen figure with its resolved, checked arguments: all bad input is refused here, before drawing.

    A setting that none of the chosen figures reads is refused too (it would silently do nothing).
    """
    figures = [FIGURES[n] for n in resolve_figure_names(names)]
    check_batch_size(settings.batch_size)
    used = {u for f in figures for u in f.uses}
    for name in sorted(settings.given() - used):
        readers = [f.name for f in FIGURES.values() if name in f.uses]
        raise StyleGANError(f"{setting(name)} is not used by the chosen figures ({', '.join(f.name for f in figures)})",
                            f"it applies to: {', '.join(readers)}")
    return [(f, f.arguments(G, settings)) for f in figures]


def draw_figure(figure: Figure, G: nn.Module, arguments: dict, settings: FigureSettings) -> np.ndarray:
    """Render one planned figure (see :func:`plan_figures`) → uint8 ``[H, W, C]``."""
    return figure.draw(G, **arguments, batch_size=settings.batch_size, progress=settings.progress)


def write_figures(G: nn.Module, names: Sequence[str], settings: FigureSettings | None = None,
                  outdir: str | os.PathLike = ".") -> list[Path]:
    """Check every chosen figure's settings, then draw each and write it as ``outdir/<file name>`` (PNG)."""
    settings = settings or FigureSettings()
    plans = plan_figures(G, names, settings)
    return [save_png(draw_figure(figure, G, arguments, settings), Path(outdir) / figure.file_name)
            for figure, arguments in plans]
