"""Helpers shared by the video / projector tests: tiny networks and reading videos back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import torch

from stylegan.networks import Generator


def tiny_generator(channels: int = 3, resolution: int = 16, c_dim: int = 0, seed: int = 1,
                   noise_strength: float = 0.1) -> Generator:
    """A random 16×16 generator (z = w = 16, 2 mapping layers, ≤ 16 channels) with visible noise and w_avg."""
    torch.manual_seed(seed)
    G = Generator(z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=resolution, img_channels=channels,
                  mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=256, channel_max=16))
    with torch.no_grad():
        G.mapping.w_avg.normal_()  # so truncation visibly does something
        for name, p in G.synthesis.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(noise_strength)  # so the noise maps matter
    return G.eval().requires_grad_(False)


def read_mp4(path: str | Path) -> tuple[dict, np.ndarray]:
    """(metadata, frames uint8 [N, H, W, 3]) decoded with imageio-ffmpeg's own ffmpeg."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    frames = [np.frombuffer(f, dtype=np.uint8).reshape(h, w, 3) for f in reader]
    return meta, np.stack(frames)


def read_gif(path: str | Path) -> tuple[list[int], np.ndarray]:
    """(per-frame durations in ms, frames uint8 [N, H, W, 3]) decoded with Pillow."""
    durations, frames = [], []
    with PIL.Image.open(path) as im:
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
            frames.append(np.asarray(im.convert("RGB")))
    return durations, np.stack(frames)


