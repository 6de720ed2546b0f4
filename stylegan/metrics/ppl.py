"""Perceptual path length (Karras et al. 2019): how much the image changes, in LPIPS-style VGG16 distance, per
small step along an interpolation path in Z or W.

Per sample: z0, z1 ~ N(0, I), t ~ U[0, 1] ('full') or t = 0 ('end'); the path points at t and t + ε (ε = 1e-4)
come from slerp in Z or lerp in W (all ws); both images are rendered in fp32 with the same constant noise,
redrawn for every batch of pairs; optionally cropped to the face region (see :func:`crop_face`); box-averaged
down to 256² when the network is larger; scaled to [0, 255]. The sample's value is ``|f(x_t) − f(x_t+ε)|² / ε²``
(f: the LPIPS features); the metric is the mean of the values between the 1st and 99th percentiles
(:func:`stylegan.metrics.formulas.filtered_mean`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from stylegan.metrics.detectors import lpips_features
from stylegan.metrics.distributed import Shard, gather_units
from stylegan.metrics.formulas import slerp
from stylegan.metrics.sampling import LabelPool, frozen_copy, unit_seed
from stylegan.metrics.specs import MetricSpec

STREAM = "ppl"

# The face region of an aligned FFHQ-style image, in whole eighths of its side (side // 8, rounded down):
# rows 3/8 to 7/8 (eyes to chin), columns 2/8 to 6/8.
FACE_ROWS_EIGHTHS = (3, 7)
FACE_COLS_EIGHTHS = (2, 6)
LPIPS_RESOLUTION = 256  # larger images are box-averaged down to this before the VGG16 features


def crop_face(img: torch.Tensor) -> torch.Tensor:
    """The face region ``[N, C, side/2, side/2]`` of square images ``[N, C, side, side]``."""
    side = img.shape[-1]
    if img.shape[-2] != side:
        raise ValueError(f"PPL crops square images, got {img.shape[-2]}x{side}")
    eighth = side // 8
    (top, bottom), (left, right) = ((lo * eighth, hi * eighth) for lo, hi in (FACE_ROWS_EIGHTHS, FACE_COLS_EIGHTHS))
    return img[..., top:bottom, left:right]


def downsample_to_256(img: torch.Tensor, img_resolution: int) -> torch.Tensor:
    """Box average over ``img_resolution // 256`` pixels square: the factor comes from the network's
    resolution (not the possibly cropped image), and networks of 256² or less are left alone."""
    factor = img_resolution // LPIPS_RESOLUTION
    return F.avg_pool2d(img, kernel_size=factor) if factor > 1 else img


class PathSampler:
    """Renders PPL sample pairs for one spec and returns their scaled LPIPS distances."""

    def __init__(self, G: nn.Module, vgg16: torch.jit.ScriptModule, spec: MetricSpec, device: torch.device):
        self.G = frozen_copy(G, device)  # a copy: its constant-noise buffers are overwritten per batch
        self.noise_buffers = [buf for name, buf in sorted(self.G.named_buffers()) if name.endswith(".noise_const")]
        self.vgg16, self.spec, self.device = vgg16, spec, device

    def _draw(self, index: int, seed: int, labels: LabelPool) -> tuple[torch.Tensor, ...]:
        """Batch ``index``'s random values (t ``[B]``, z0, z1 ``[B, z_dim]``, c ``[B, c_dim]``) on the device;
        also redraws the constant noise. Drawn in this order from one generator seeded per batch."""
        size = self.spec.ppl_batch
        gen = torch.Generator().manual_seed(unit_seed(seed, STREAM, index))
        t = torch.rand([size], generator=gen)
        if self.spec.sampling == "end":
            t = t * 0.0  # still drawn, so that both samplings see the same z for the same seed
        z0, z1 = torch.randn([2 * size, self.G.z_dim], generator=gen).chunk(2)
        c = labels.draw(gen, size)
        for buf in self.noise_buffers:
            buf.copy_(torch.randn(buf.shape, generator=gen))
        return tuple(x.to(self.device) for x in (t, z0, z1, c))

    def _path_points(self, t: torch.Tensor, z0: torch.Tensor, z1: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """ws ``[2B, num_ws, w_dim]``: the B points at t, then the B points at t + ε."""
        steps = torch.cat([t, t + self.spec.epsilon])
        both_c = torch.cat([c, c])
        if self.spec.space == "z":
            return self.G.mapping(slerp(z0.repeat(2, 1), z1.repeat(2, 1), steps[:, None]), both_c)
        w_start, w_end = self.G.mapping(torch.cat([z0, z1]), both_c).chunk(2)
        return torch.lerp(w_start.repeat(2, 1, 1), w_end.repeat(2, 1, 1), steps[:, None, None])

    def _lpips_input(self, ws: torch.Tensor) -> torch.Tensor:
        """The images the VGG16 sees: rendered in fp32, cropped and reduced as the spec says, in [0, 255]."""
        img = self.G.synthesis(ws, noise_mode="const", force_fp32=True)
        if self.spec.crop:
            img = crop_face(img)
        return (downsample_to_256(img, self.G.img_resolution) + 1) * 127.5

    def pair_batch(self, index: int, seed: int, labels: LabelPool) -> torch.Tensor:
        """Distances ``[ppl_batch]`` (float64, CPU) for batch ``index`` of the PPL stream."""
        ws = self._path_points(*self._draw(index, seed, labels))
        at_t, at_t_eps = lpips_features(self.vgg16, self._lpips_input(ws)).chunk(2)
        squared = (at_t - at_t_eps).square().sum(dim=1)
        return (squared / self.spec.epsilon ** 2).double().cpu()


def ppl_distances(G: nn.Module, vgg16: torch.jit.ScriptModule, spec: MetricSpec, *, seed: int, labels: LabelPool,
                  device: torch.device, shard: Shard, progress: bool = False) -> np.ndarray:
    """The ``spec.num_gen`` scaled distances ``[N]`` in sample order (each rank computes its batches)."""
    sampler = PathSampler(G, vgg16, spec, device)
    per_batch = spec.ppl_batch
    num_batches = -(-spec.num_gen // per_batch)
    batch_sizes = np.minimum(per_batch, spec.num_gen - per_batch * np.arange(num_batches)).astype(np.int64)
    mine = shard.units(num_batches)
    bar = tqdm(mine, desc=f"{spec.label} paths", unit="batch", disable=not (progress and shard.is_main), leave=False)
    with torch.no_grad():
        parts = [sampler.pair_batch(b, seed, labels)[: batch_sizes[b]] for b in bar]
    local = torch.cat(parts) if parts else torch.zeros([0], dtype=torch.float64)
    return gather_units(local, batch_sizes, shard).numpy()
