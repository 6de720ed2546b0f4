"""Grid videos: latent walks (``lerp-video``) and style mixing in motion (``style-mix-video``).

A video is an :class:`Animation`: per frame, the ws of the cells that move, and how rendered cells tile a
frame. :func:`render_animation` renders it in batches of at most ``batch_size`` images (or one frame's
cells, when a frame has more), so memory stays bounded however large the grid or long the video.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from stylegan.errors import StyleGANError, setting
from stylegan.devices import module_device
from stylegan.explore.images import check_grid, make_grid, to_uint8
from stylegan.explore.interpolate import LoopPath, check_interp, keyframe_latents, loop_positions
from stylegan.explore.labels import class_labels
from stylegan.explore.render import check_batch_size, check_noise_mode
from stylegan.explore.seeds import seed_latents
from stylegan.explore.style_mix import check_style_indices, mix_ws
from stylegan.explore.video_io import check_frame_size
from stylegan.limits import MAX_WALK_VALUES

SPACES = ("z", "w")


@dataclass
class Animation:
    """What a grid video shows.

    ``ws_at(frames)`` maps frame indices ``[F]`` to ws ``[F, num_cells, num_ws, w_dim]``;
    ``compose(cells)`` tiles one frame's rendered cells uint8 ``[num_cells, H, W, C]`` into a frame.
    """

    num_frames: int
    num_cells: int
    ws_at: Callable[[np.ndarray], torch.Tensor]
    compose: Callable[[np.ndarray], np.ndarray]


def frame_count(duration_sec: float, fps: float) -> int:
    """``round(duration_sec * fps)`` frames, at least 1; StyleGANError for a non-positive fps or duration."""
    if not fps > 0 or not duration_sec > 0:
        raise StyleGANError(f"duration {duration_sec} s at {fps} fps makes no video",
                            f"give positive {setting('duration_sec')} and {setting('fps')}")
    return max(1, round(duration_sec * fps))


def render_animation(G: nn.Module, animation: Animation, *, noise_mode: str = "const", batch_size: int = 8,
                     progress: bool = True, desc: str = "video") -> Iterator[np.ndarray]:
    """Render ``animation`` frame by frame, yielding uint8 frames ``[FH, FW, C]`` in order.

    The progress bar counts frames; when one frame takes several batches, it also shows the cells of the
    frame rendered so far, so a large grid shows progress before its first frame is done.
    """
    check_noise_mode(noise_mode)
    check_batch_size(batch_size)
    device = module_device(G)
    frames_per_chunk = max(1, batch_size // animation.num_cells)
    per_cell = animation.num_cells > batch_size

    def render() -> Iterator[np.ndarray]:
        with tqdm(total=animation.num_frames, unit="frame", desc=desc, disable=not progress) as bar, torch.no_grad():
            for start in range(0, animation.num_frames, frames_per_chunk):
                frames = np.arange(start, min(start + frames_per_chunk, animation.num_frames))
                ws = animation.ws_at(frames).flatten(0, 1)
                parts = []
                for i in range(0, len(ws), batch_size):
                    parts.append(to_uint8(G.synthesis(ws[i:i + batch_size].to(device), noise_mode=noise_mode)))
                    if per_cell:
                        bar.set_postfix_str(f"cell {min(i + batch_size, len(ws))}/{animation.num_cells}",
                                            refresh=False)
                        bar.update(0)  # redraws at most every mininterval
                cells = np.concatenate(parts)
                for frame_cells in cells.reshape(len(frames), animation.num_cells, *cells.shape[1:]):
                    yield animation.compose(frame_cells)
                    bar.update(1)

    return render()


def _map(G: nn.Module, z: np.ndarray | torch.Tensor, class_idx: int | None, truncation_psi: float,
         truncation_cutoff: int | None) -> torch.Tensor:
    z = torch.as_tensor(z, dtype=torch.float32).to(module_device(G))
    cutoff = {} if truncation_cutoff is None else {"truncation_cutoff": truncation_cutoff}  # v1 keeps its 8
    with torch.no_grad():
        return G.mapping(z, class_labels(G, class_idx, len(z)), truncation_psi=truncation_psi, **cutoff)


def check_walk_size(num_walks: int, num_keyframes: int, values_per_key: int) -> None:
    """Raise StyleGANError when walks would hold more than MAX_WALK_VALUES latent values (before any are drawn)."""
    total = num_walks * num_keyframes * values_per_key
    if total > MAX_WALK_VALUES:
        raise StyleGANError(f"{num_walks} walks of {num_keyframes} keyframes hold {total} latent values, over the "
                            f"limit of {MAX_WALK_VALUES} (MAX_WALK_VALUES)",
                            f"use fewer grid cells or fewer {setting('num_keyframes', '--keyframes')}")


def moving_ws(G: nn.Module, seeds: Sequence[int], *, num_frames: int, num_keyframes: int, kind: str = "cubic",
              space: str = "z", truncation_psi: float = 1, truncation_cutoff: int | None = None,
              class_idx: int | None = None) -> Callable[[np.ndarray], torch.Tensor]:
    """Looping latent walks, one per seed: frame indices ``[F]`` → ws ``[F, len(seeds), num_ws, w_dim]`` (CPU).

    Seed s walks through the keyframes ``RandomState(s).randn(K, z_dim)`` (frame 0 is ``generate --seeds s``).
    In Z the latents are interpolated and then mapped (with truncation); in W the keyframes are mapped and
    their ws interpolated.
    """
    check_interp(kind)
    if space not in SPACES:
        raise StyleGANError(f"unknown latent space {space!r}", f"set {setting('space')} to z or w")
    class_labels(G, class_idx, 0)  # validates the class now rather than at the first frame
    check_walk_size(len(seeds), num_keyframes, G.z_dim if space == "z" else G.num_ws * G.w_dim)
    z_keys = keyframe_latents(seeds, num_keyframes, G.z_dim).transpose(1, 0, 2)  # [K, cells, z_dim]
    n = len(seeds)
    if space == "w":
        keys = _map(G, z_keys.reshape(-1, G.z_dim), class_idx, truncation_psi, truncation_cutoff)
        path = LoopPath(keys.cpu().double().numpy().reshape(num_keyframes, n, G.num_ws, G.w_dim), kind)
        return lambda frames: torch.from_numpy(path(loop_positions(num_frames, num_keyframes, frames))).float()
    path = LoopPath(z_keys, kind)

    def ws_at(frames: np.ndarray) -> torch.Tensor:
        z = path(loop_positions(num_frames, num_keyframes, frames)).reshape(-1, G.z_dim)
        return _map(G, z, class_idx, truncation_psi, truncation_cutoff).cpu().reshape(len(frames), n, G.num_ws, G.w_dim)

    return ws_at


def lerp_animation(G: nn.Module, seeds: Sequence[int], grid: tuple[int, int], *, num_frames: int,
                   num_keyframes: int, kind: str = "cubic", space: str = "z", truncation_psi: float = 1,
                   truncation_cutoff: int | None = None, class_idx: int | None = None) -> Animation:
    """A ``grid=(cols, rows)`` of looping latent walks, cell i walking from ``seeds[i]`` (see :func:`moving_ws`)."""
    if not seeds:
        raise StyleGANError("a latent walk video needs at least one seed", f"give {setting('seeds')}")
    cols, rows = grid
    if cols * rows < len(seeds):
        raise StyleGANError(f"a {cols}x{rows} grid has {cols * rows} cells but there are {len(seeds)} seeds",
                            f"choose a larger {setting('grid', '--grid-w/--grid-h')} or fewer seeds")
    check_grid(cols, rows, G.img_resolution, G.img_resolution)
    check_frame_size(cols * G.img_resolution, rows * G.img_resolution)
    ws_at = moving_ws(G, seeds, num_frames=num_frames, num_keyframes=num_keyframes, kind=kind, space=space,
                      truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, class_idx=class_idx)
    return Animation(num_frames, len(seeds), ws_at, lambda cells: make_grid(cells, cols, rows))


def style_mix_animation(G: nn.Module, row_seeds: Sequence[int], col_seeds: Sequence[int], styles: Sequence[int], *,
                        num_frames: int, num_keyframes: int, kind: str = "cubic", space: str = "z",
                        truncation_psi: float = 0.7, class_idx: int | None = None,
                        noise_mode: str = "const") -> Animation:
    """Style mixing in motion: a ``(C + 1) × (R + 1)`` grid per frame.

    Top row: the column seeds walking through latent space (as in :func:`moving_ws`); left column: the
    row seeds, still; cell (r, c): row r's ws with the ``styles`` indices taken from column c at that frame.
    """
    if not row_seeds or not col_seeds:
        raise StyleGANError("a style-mixing video needs at least one row seed and one column seed",
                            f"give {setting('row_seeds', '--row-seed')} and {setting('col_seeds')}")
    check_style_indices(styles, G.num_ws)
    check_noise_mode(noise_mode)
    check_grid(len(col_seeds) + 1, len(row_seeds) + 1, G.img_resolution, G.img_resolution)
    check_frame_size((len(col_seeds) + 1) * G.img_resolution, (len(row_seeds) + 1) * G.img_resolution)
    cols_at = moving_ws(G, col_seeds, num_frames=num_frames, num_keyframes=num_keyframes, kind=kind, space=space,
                        truncation_psi=truncation_psi, class_idx=class_idx)
    row_ws = _map(G, seed_latents(row_seeds, G.z_dim), class_idx, truncation_psi, None).cpu()
    with torch.no_grad():
        row_images = to_uint8(G.synthesis(row_ws.to(module_device(G)), noise_mode=noise_mode))
    R, C = len(row_seeds), len(col_seeds)

    def ws_at(frames: np.ndarray) -> torch.Tensor:
        col_ws = cols_at(frames)  # [F, C, num_ws, w_dim]
        mixed = torch.stack([mix_ws(row_ws, cw, styles).flatten(0, 1) for cw in col_ws])  # [F, R*C, ...]
        return torch.cat([col_ws, mixed], dim=1)

    def compose(cells: np.ndarray) -> np.ndarray:
        top, mixed = cells[:C], cells[C:].reshape(R, C, *cells.shape[1:])
        tiles = [np.zeros_like(top[0]), *top]
        for r in range(R):
            tiles += [row_images[r], *mixed[r]]
        return make_grid(np.stack(tiles), C + 1, R + 1)

    return Animation(num_frames, C + R * C, ws_at, compose)
