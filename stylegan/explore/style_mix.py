"""Style mixing (the StyleGAN paper's figure): row images take some of their styles from column images.

Each row seed and column seed is mapped to ws ``[num_ws, w_dim]`` (truncated toward ``w_avg`` by psi);
rows and columns may also be :class:`ProjectedW` — ws found by the projector, used as they are — so real
images can be mixed. Cell (row, col) is the row's ws with the ``styles`` indices replaced by the column's.
File names follow the official tool: ``{row}-{col}.png`` per cell, ``{seed}-{seed}.png`` per unmixed seed
(a projected w is named by its label), ``grid.png``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from stylegan.devices import module_device
from stylegan.errors import StyleGANError, setting
from stylegan.explore.images import check_grid, make_grid, save_png, to_uint8
from stylegan.explore.labels import class_labels
from stylegan.explore.render import check_batch_size, check_noise_mode
from stylegan.explore.seeds import parse_index_list, parse_seeds, seed_latents
from stylegan.explore.ws_files import check_ws_shape, read_projected_w

GROUP_NAMES = ("coarse", "middle", "fine")


def style_groups(num_ws: int) -> dict[str, list[int]]:
    """Which w indices are coarse (4²–8²), middle (16²–32²) and fine (64² and up).

    Follows the paper's convention of two ws per resolution: index k belongs to resolution
    ``2 ** (2 + k // 2)``. A group is empty when the network is too small to have it.
    """
    groups: dict[str, list[int]] = {name: [] for name in GROUP_NAMES}
    for k in range(num_ws):
        res = 2 ** (2 + k // 2)
        groups["coarse" if res <= 8 else "middle" if res <= 32 else "fine"].append(k)
    return groups


@dataclass(frozen=True)
class StyleSpec:
    """A parsed ``--styles`` value before the network is known: group names and explicit w indices.

    :meth:`resolve` turns it into indices for a network with ``num_ws`` ws.
    """

    groups: tuple[str, ...]
    indices: tuple[int, ...]

    def resolve(self, num_ws: int) -> list[int]:
        """Sorted unique w indices; StyleGANError for an empty group or an index the network lacks."""
        available = style_groups(num_ws)
        chosen = set(self.indices)
        for name in self.groups:
            if not available[name]:
                raise StyleGANError(f"style group {name!r} is empty for a network with {num_ws} ws",
                                    f"groups here: {_describe_groups(available)}")
            chosen.update(available[name])
        styles = sorted(chosen)
        check_style_indices(styles, num_ws)
        return styles


def parse_style_spec(text: str) -> StyleSpec:
    """Parse ``--styles``: index lists and group names mixed, e.g. ``0-6``, ``coarse``, ``coarse,8-9``.

    Only the syntax is checked here (no network needed); junk raises StyleGANError that also names the groups,
    since a misspelt group ('medium') is the likely mistake.
    """
    groups: list[str] = []
    indices: list[int] = []
    for part in text.split(","):
        name = part.strip().lower()
        if name in GROUP_NAMES:
            groups.append(name)
            continue
        try:
            indices.extend(parse_index_list(part))
        except StyleGANError as e:
            raise StyleGANError(e.what, f"give w indices like 0-3,8 or a group: {', '.join(GROUP_NAMES)}") from None
    return StyleSpec(tuple(groups), tuple(indices))


def parse_styles(text: str, num_ws: int) -> list[int]:
    """``--styles`` text → sorted unique w indices for a network with ``num_ws`` ws (see :class:`StyleSpec`)."""
    return parse_style_spec(text).resolve(num_ws)


def check_style_indices(styles: Sequence[int], num_ws: int) -> None:
    """Raise StyleGANError unless every index in ``styles`` names one of the network's ``num_ws`` ws."""
    outside = [i for i in styles if not 0 <= i < num_ws]
    if outside:
        raise StyleGANError(f"style index {outside[0]} is beyond this network's {num_ws} ws",
                            f"use indices 0-{num_ws - 1} or a group ({_describe_groups(style_groups(num_ws))})")


def _describe_groups(groups: dict[str, list[int]]) -> str:
    return ", ".join(f"{name}={format_indices(ix)}" for name, ix in groups.items() if ix)


def format_indices(indices: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` → ``"0-2,5"`` (the inverse of parse_index_list for sorted unique lists)."""
    parts, i = [], 0
    while i < len(indices):
        j = i
        while j + 1 < len(indices) and indices[j + 1] == indices[j] + 1:
            j += 1
        parts.append(str(indices[i]) if i == j else f"{indices[i]}-{indices[j]}")
        i = j + 1
    return ",".join(parts) or "none"


def mix_ws(row_ws: torch.Tensor, col_ws: torch.Tensor, styles: Sequence[int]) -> torch.Tensor:
    """Row ws ``[R, num_ws, w_dim]`` and column ws ``[C, num_ws, w_dim]`` → mixed ``[R, C, num_ws, w_dim]``."""
    mixed = row_ws.unsqueeze(1).repeat(1, col_ws.shape[0], 1, 1)
    mixed[:, :, list(styles)] = col_ws[:, list(styles)].unsqueeze(0).expand(row_ws.shape[0], -1, -1, -1)
    return mixed


@dataclass(eq=False)
class ProjectedW:
    """A row or column given by its ws ``[num_ws, w_dim]`` or ``[1, num_ws, w_dim]`` (e.g. from
    ``projected_w.npz``), named ``label``."""

    label: str
    ws: torch.Tensor


Source = Union[int, ProjectedW]  # a seed, or ws given directly


def projected_label(path: str | os.PathLike) -> str:
    """A name for the ws in ``path``: its stem, or its folder's name for the projector's ``projected_w.npz``."""
    path = Path(path)
    return path.parent.name if path.stem == "projected_w" and path.parent.name not in ("", ".") else path.stem


def parse_sources(text: str) -> list[Source]:
    """Parse ``--rows``/``--cols``: seeds and ranges as in :func:`parse_seeds`, and ``.npz`` files, comma-separated.

    A file holding N ws gives N entries labelled ``NAME.0``… (one w: ``NAME``). Order is kept.
    """
    sources: list[Source] = []
    for part in text.split(","):
        part = part.strip()
        if not part.lower().endswith(".npz"):
            sources.extend(parse_seeds(part))
            continue
        ws = torch.as_tensor(np.asarray(read_projected_w(part)))
        ws = ws[None] if ws.ndim == 2 else ws
        if ws.ndim != 3 or len(ws) == 0:
            raise StyleGANError(f"{part} holds ws of shape {list(ws.shape)}, expected [N, num_ws, w_dim]",
                                "give the projected_w.npz written by the projector")
        label = projected_label(part)
        sources.extend(ProjectedW(label if len(ws) == 1 else f"{label}.{i}", w[None]) for i, w in enumerate(ws))
    return sources


def source_label(source: Source) -> int | str:
    """The key a row or column has in :attr:`StyleMix.images`: the seed, or the projected w's label."""
    return source.label if isinstance(source, ProjectedW) else source


@dataclass
class StyleMix:
    """The rendered figure: uint8 images ``[H, W, C]`` keyed ``(row, col)`` by seed or projected-w label.

    ``images[(s, s)]`` is source s unmixed, for every row and column.
    """

    row_seeds: list[int | str]
    col_seeds: list[int | str]
    styles: list[int]
    images: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)

    def grid(self) -> np.ndarray:
        """The figure ``[(R+1)*H, (C+1)*W, C]``: blank corner, column seeds on top, row seeds on the left."""
        blank = np.zeros_like(self.images[(self.row_seeds[0], self.row_seeds[0])])
        cells = [blank] + [self.images[(c, c)] for c in self.col_seeds]
        for r in self.row_seeds:
            cells += [self.images[(r, r)]] + [self.images[(r, c)] for c in self.col_seeds]
        return make_grid(np.stack(cells), len(self.col_seeds) + 1, len(self.row_seeds) + 1)


def _synthesize(G: nn.Module, ws: torch.Tensor, noise_mode: str, batch_size: int, bar: tqdm) -> np.ndarray:
    out = []
    for start in range(0, len(ws), batch_size):
        img = G.synthesis(ws[start:start + batch_size], noise_mode=noise_mode)
        out.append(to_uint8(img))
        bar.update(img.shape[0])
    return np.concatenate(out)


def _source_ws(G: nn.Module, sources: Sequence[Source], truncation_psi: float,
               class_idx: int | None) -> dict[int | str, torch.Tensor]:
    """ws ``[num_ws, w_dim]`` on G's device for each distinct source, keyed by its label, first-seen order."""
    unique: dict[int | str, Source] = {}
    for source in sources:
        label = source_label(source)
        if label in unique and unique[label] is not source and isinstance(source, ProjectedW):
            raise StyleGANError(f"two different projected ws are both named {label!r}", "give the files distinct names")
        unique.setdefault(label, source)
    seeds = [s for s in unique.values() if not isinstance(s, ProjectedW)]
    device = module_device(G)
    out: dict[int | str, torch.Tensor] = {}
    # One seed per mapping call: a batch of several rounds differently on some CPUs (oneDNN/AMX picks kernels
    # by batch size), and a seed's ws must not depend on which other seeds share the figure.
    for seed in seeds:
        z = seed_latents([seed], G.z_dim).to(device)
        out[seed] = G.mapping(z, class_labels(G, class_idx, 1), truncation_psi=truncation_psi)[0]
    for label, source in unique.items():
        if isinstance(source, ProjectedW):
            ws = check_ws_shape(source.ws, G)
            if len(ws) != 1:
                raise StyleGANError(f"projected w {label!r} holds {len(ws)} ws", "give one w per row or column")
            out[label] = ws[0].to(device)
    return {label: out[label] for label in unique}


def style_mix(
    G: nn.Module,
    row_seeds: Sequence[Source],
    col_seeds: Sequence[Source],
    styles: Sequence[int],
    *,
    truncation_psi: float = 1,
    class_idx: int | None = None,
    noise_mode: str = "const",
    batch_size: int = 8,
    progress: bool = True,
) -> StyleMix:
    """Render the style-mixing figure for ``row_seeds`` × ``col_seeds``, swapping in the ``styles`` indices.

    Rows and columns are seeds (mapped, truncated by ``truncation_psi``) or :class:`ProjectedW` (used as given).
    """
    if not row_seeds or not col_seeds:
        raise StyleGANError("style mixing needs at least one row seed and one column seed",
                            f"give {setting('row_seeds', '--rows')} and {setting('col_seeds', '--cols')}")
    check_noise_mode(noise_mode)
    check_batch_size(batch_size)
    check_style_indices(styles, G.num_ws)
    # The figure is a (cols + 1) × (rows + 1) grid: refuse an oversized one before rendering any cell.
    check_grid(len(col_seeds) + 1, len(row_seeds) + 1, G.img_resolution, G.img_resolution)
    with torch.no_grad():
        w_of = _source_ws(G, [*row_seeds, *col_seeds], truncation_psi, class_idx)
        rows, cols = [source_label(s) for s in row_seeds], [source_label(s) for s in col_seeds]
        mixed = mix_ws(torch.stack([w_of[r] for r in rows]), torch.stack([w_of[c] for c in cols]), styles)
        total = len(w_of) + mixed.shape[0] * mixed.shape[1]
        with tqdm(total=total, unit="img", desc="style-mix", disable=not progress) as bar:
            plain = _synthesize(G, torch.stack(list(w_of.values())), noise_mode, batch_size, bar)
            cells = _synthesize(G, mixed.flatten(0, 1), noise_mode, batch_size, bar)
    result = StyleMix(rows, cols, list(styles))
    result.images = {(s, s): img for s, img in zip(w_of, plain)}
    keys = [(r, c) for r in rows for c in cols]
    result.images.update(zip(keys, cells))  # a cell (s, s) replaces the unmixed image, as in the official tool
    return result


def write_style_mix(mix: StyleMix, outdir: str | os.PathLike) -> list[Path]:
    """Write ``{row}-{col}.png`` for every image in ``mix`` and ``grid.png``; returns the paths."""
    outdir = Path(outdir)
    paths = [save_png(img, outdir / f"{r}-{c}.png") for (r, c), img in mix.images.items()]
    paths.append(save_png(mix.grid(), outdir / "grid.png"))
    return paths
