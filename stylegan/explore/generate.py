"""Rendering images from seeds or from projected W, in batches, and writing them as PNG files.

File names follow the official tools: ``seed0042.png`` per seed, ``proj00.png`` per projected w,
``grid.png`` for a grid of everything.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from stylegan.errors import StyleGANError
from stylegan.explore.images import grid_shape, make_grid, save_png, to_uint8
from stylegan.explore.seeds import z_from_seed

NOISE_MODES = ("const", "random", "none")


def network_device(G: nn.Module) -> torch.device:
    """The device G's weights live on (inputs are moved there)."""
    return G.mapping.w_avg.device


def check_class(G: nn.Module, class_idx: int | None) -> None:
    """Raise StyleGANError unless ``class_idx`` fits G: required iff G is conditional, in [0, c_dim)."""
    if G.c_dim == 0:
        if class_idx is not None:
            raise StyleGANError("--class was given but the network is unconditional", "leave out --class")
        return
    if class_idx is None:
        raise StyleGANError(f"the network is conditional with {G.c_dim} classes",
                            f"pick one with --class, 0 to {G.c_dim - 1}")
    if not 0 <= class_idx < G.c_dim:
        raise StyleGANError(f"class {class_idx} is out of range for a network with {G.c_dim} classes",
                            f"use --class between 0 and {G.c_dim - 1}")


def class_labels(G: nn.Module, class_idx: int | None, n: int) -> torch.Tensor:
    """One-hot labels ``[n, c_dim]`` on G's device (``[n, 0]`` for an unconditional G)."""
    check_class(G, class_idx)
    c = torch.zeros([n, G.c_dim], device=network_device(G))
    if class_idx is not None:
        c[:, class_idx] = 1
    return c


def seed_latents(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    """Latents ``[len(seeds), z_dim]`` float32, row i being the official tools' z for ``seeds[i]``."""
    # G casts z to float32 anyway; doing it here keeps float64 off devices that lack it (MPS).
    z = np.concatenate([z_from_seed(seed, z_dim) for seed in seeds]) if seeds else np.zeros([0, z_dim])
    return torch.from_numpy(z).to(torch.float32)


def check_noise_mode(noise_mode: str) -> None:
    """Raise StyleGANError unless ``noise_mode`` is 'const', 'random' or 'none'."""
    if noise_mode not in NOISE_MODES:
        raise StyleGANError(f"unknown noise mode {noise_mode!r}", f"use one of {', '.join(NOISE_MODES)}")


def check_batch_size(batch_size: int) -> None:
    """Raise StyleGANError unless ``batch_size`` is at least 1."""
    if batch_size < 1:
        raise StyleGANError(f"batch size {batch_size} is too small", "use a batch size of at least 1")


def images_from_seeds(
    G: nn.Module,
    seeds: Sequence[int],
    *,
    truncation_psi: float = 1,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    noise_mode: str = "const",
    batch_size: int = 8,
    progress: bool = True,
) -> Iterator[torch.Tensor]:
    """Render one image per seed, yielding float32 CPU batches ``[B, C, H, W]`` in about [-1, 1].

    Batches come in seed order and together cover ``seeds``. A seed's image does not depend on the
    batch it lands in (up to float rounding) when ``noise_mode`` is 'const' or 'none'.
    """
    # Validate now rather than at the first next(), so mistakes surface where the call is made.
    check_noise_mode(noise_mode)
    check_batch_size(batch_size)
    check_class(G, class_idx)
    z_all = seed_latents(seeds, G.z_dim)

    def render() -> Iterator[torch.Tensor]:
        with tqdm(total=len(seeds), unit="img", desc="generate", disable=not progress) as bar, torch.no_grad():
            for start in range(0, len(seeds), batch_size):
                z = z_all[start:start + batch_size].to(network_device(G))
                c = class_labels(G, class_idx, z.shape[0])
                # No cutoff given: leave it to the network (all ws; StyleGAN v1 keeps its own default of 8).
                cutoff = {} if truncation_cutoff is None else {"truncation_cutoff": truncation_cutoff}
                img = G(z, c, truncation_psi=truncation_psi, noise_mode=noise_mode, **cutoff)
                bar.update(z.shape[0])
                yield img.to(device="cpu", dtype=torch.float32)

    return render()


def images_from_ws(
    G: nn.Module, ws: torch.Tensor, *, noise_mode: str = "const", batch_size: int = 8, progress: bool = True
) -> Iterator[torch.Tensor]:
    """Synthesize ws ``[N, num_ws, w_dim]``, yielding float32 CPU batches ``[B, C, H, W]`` in about [-1, 1]."""
    check_noise_mode(noise_mode)
    check_batch_size(batch_size)
    ws = check_ws_shape(ws, G)

    def render() -> Iterator[torch.Tensor]:
        with tqdm(total=len(ws), unit="img", desc="synthesize", disable=not progress) as bar, torch.no_grad():
            for start in range(0, len(ws), batch_size):
                img = G.synthesis(ws[start:start + batch_size].to(network_device(G)), noise_mode=noise_mode)
                bar.update(img.shape[0])
                yield img.to(device="cpu", dtype=torch.float32)

    return render()


def read_projected_w(path: str | os.PathLike) -> np.ndarray:
    """The array under key ``w`` of a projector ``.npz`` (official layout ``[1, num_ws, w_dim]``)."""
    try:
        data = np.load(path, allow_pickle=False)  # never unpickle user files
    except (OSError, ValueError) as e:
        # numpy calls any non-npy/npz content "pickled data" and suggests allow_pickle: never our advice.
        reason = "not an .npz archive" if "allow_pickle" in str(e) else " ".join(str(e).split())
        raise StyleGANError(f"cannot read projected W from {path}: {reason}",
                            "give the projected_w.npz written by `stylegan project`") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise StyleGANError(f"{path} is a single array, not an .npz archive", "save it with np.savez(path, w=ws)")
    with data:
        if "w" not in data.files:
            raise StyleGANError(f"{path} has no array named 'w' (it has: {', '.join(data.files) or 'none'})",
                                "give the projected_w.npz written by the projector")
        try:
            return data["w"]
        except ValueError as e:
            raise StyleGANError(f"cannot read 'w' from {path}: {e}", "store w as a plain float array") from None


def check_ws_shape(ws: np.ndarray | torch.Tensor, G: nn.Module) -> torch.Tensor:
    """Accept ws ``[N, num_ws, w_dim]`` or ``[num_ws, w_dim]``; return float32 ``[N, num_ws, w_dim]``."""
    ws = torch.as_tensor(np.asarray(ws) if isinstance(ws, np.ndarray) else ws)
    if ws.ndim == 2:
        ws = ws.unsqueeze(0)
    if ws.ndim != 3 or tuple(ws.shape[1:]) != (G.num_ws, G.w_dim) or ws.shape[0] == 0:
        raise StyleGANError(f"projected W has shape {list(ws.shape)}, expected [N, {G.num_ws}, {G.w_dim}]",
                            "project with the same network you generate with")
    if not ws.is_floating_point():
        raise StyleGANError(f"projected W has dtype {ws.dtype}", "ws must be floating point")
    return ws.to(torch.float32)


def resolve_grid(n: int, grid_w: int | None, grid_h: int | None) -> tuple[int, int]:
    """Grid ``(cols, rows)`` for n images: near-square by default; a given width or height is kept."""
    if grid_w is None and grid_h is None:
        return grid_shape(n)
    if grid_w is None:
        grid_w = -(-n // grid_h)
    elif grid_h is None:
        grid_h = -(-n // grid_w)
    if grid_w * grid_h < n:
        raise StyleGANError(f"a {grid_w}x{grid_h} grid has {grid_w * grid_h} cells but there are {n} images",
                            "choose a larger --grid-w/--grid-h or fewer images")
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
        images = np.concatenate([to_uint8(b) for b in batches])
        return [save_png(make_grid(images, *grid), outdir / "grid.png")]
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
