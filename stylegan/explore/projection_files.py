"""The projector's output files, as the official tool names them.

``target.png`` (the prepared target), ``proj.png`` (the final projection), ``projected_w.npz`` (key ``w``,
float32 ``[1, num_ws, w_dim]``, readable by ``generate --projected-w``), optionally ``proj.mp4`` (target
beside the projection, one frame per step) and ``steps/step0001.png``… (N evenly spaced steps), and
``projection.json`` (the options used and the distance per step: what lets a rerun skip finished folders).
Images are rendered with the caller's network and its stored noise ('const'), so ``proj.png`` is what the
saved ws produce; the noise maps the optimiser tuned are not kept.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from stylegan.atomic import atomic_output
from stylegan.devices import module_device
from stylegan.errors import StyleGANError, setting
from stylegan.explore.images import save_png
from stylegan.explore.projector import Projection, projector_uint8
from stylegan.explore.video_io import GIF_FIX, write_video
from stylegan.explore.ws_files import save_ws

TARGET_FILE, PROJ_FILE, W_FILE, VIDEO_FILE, STEPS_DIR = "target.png", "proj.png", "projected_w.npz", "proj.mp4", "steps"
INFO_FILE = "projection.json"
VIDEO_FPS = 10  # the official projector's progress videos run at 10 fps
# What to do when proj.mp4 cannot be encoded (its name is fixed, so a GIF is no way out).
NO_VIDEO_FIX = (f"turn off {setting('save_video', '--no-save-video')}, or point $IMAGEIO_FFMPEG_EXE at a "
                "working ffmpeg")


def render_projection(G: nn.Module, ws: torch.Tensor, batch_size: int = 8) -> Iterator[np.ndarray]:
    """ws ``[N, num_ws, w_dim]`` → uint8 images ``[H, W, C]`` one by one (projector byte mapping, 'const' noise)."""
    for start in range(0, len(ws), batch_size):
        # no_grad per batch, never around a yield: a generator left suspended would keep autograd off for the
        # whole process until it is collected.
        with torch.no_grad():
            images = projector_uint8(G.synthesis(ws[start:start + batch_size].to(module_device(G)), noise_mode="const"))
        yield from images


def snapshot_steps(num_steps: int, count: int) -> list[int]:
    """``count`` step indices (0-based) spread evenly over ``num_steps``: first to last (just the last for 1)."""
    if count <= 0:
        return []
    count = min(count, num_steps)
    if count == 1:
        return [num_steps - 1]
    return sorted({round(i * (num_steps - 1) / (count - 1)) for i in range(count)})


def is_done(outdir: str | os.PathLike, options: dict) -> bool:
    """True when ``outdir`` holds a finished projection made with exactly these ``options``."""
    outdir = Path(outdir)
    try:
        info = json.loads((outdir / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("options") == options and (outdir / W_FILE).is_file()


def write_projection(G: nn.Module, target: np.ndarray, projection: Projection, outdir: str | os.PathLike, *,
                     save_video: bool = True, num_snapshots: int = 0, fps: float = VIDEO_FPS,
                     batch_size: int = 8, progress: bool = False, options: dict | None = None) -> list[Path]:
    """Write the files listed in the module docstring for one projection; returns their paths.

    ``target`` is uint8 ``[H, W, C]``; ``options`` (JSON-able) are recorded in ``projection.json``.
    ``projected_w.npz`` is written last, so its presence means the folder is complete.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = [save_png(target, outdir / TARGET_FILE)]
    final = next(render_projection(G, projection.final_ws))
    paths.append(save_png(final, outdir / PROJ_FILE))
    steps = snapshot_steps(len(projection.ws), num_snapshots)
    if steps:
        (outdir / STEPS_DIR).mkdir(exist_ok=True)
        for step, image in zip(steps, render_projection(G, projection.ws[steps], batch_size)):
            paths.append(save_png(image, outdir / STEPS_DIR / f"step{step + 1:04d}.png"))
    if save_video:
        from tqdm import tqdm

        frames = (np.concatenate([target, image], axis=1) for image in
                  tqdm(render_projection(G, projection.ws, batch_size), total=len(projection.ws), unit="frame",
                       desc="video", disable=not progress))
        try:
            write_video(outdir / VIDEO_FILE, frames, fps)
        except StyleGANError as e:
            if e.fix != GIF_FIX:
                raise
            raise StyleGANError(e.what, NO_VIDEO_FIX) from None
        paths.append(outdir / VIDEO_FILE)
    info = {"options": options or {}, "dist": projection.dist, "loss": projection.loss}
    with atomic_output(outdir / INFO_FILE, "projection record", "check free space and permissions") as tmp:
        tmp.write_text(json.dumps(info) + "\n", encoding="utf-8")
    paths.append(outdir / INFO_FILE)
    paths.append(save_ws(projection.final_ws, outdir / W_FILE))
    return paths
