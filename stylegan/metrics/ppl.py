"""Perceptual path length: how much the image changes, in LPIPS-style VGG16 distance, per small step in Z or W.

Per sample: z0, z1 ~ N(0, I), t ~ U[0, 1] ('full') or t = 0 ('end'); points at t and t + ε (ε = 1e-4) by
slerp in Z or lerp in W (all ws); both images rendered with the same freshly randomised constant noise
(redrawn per batch of pairs), in fp32; optionally cropped to the face region (rows 3/8–7/8, columns
2/8–6/8); box-downsampled to 256 when larger; scaled to [0, 255]; distance ``|f(x_t) − f(x_t+ε)|² / ε²``.
The metric is the mean of the distances between the 1st and 99th percentiles.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from stylegan.metrics.detectors import lpips_features
from stylegan.metrics.distributed import Shard, gather_units
from stylegan.metrics.formulas import slerp
from stylegan.metrics.sampling import LabelPool, unit_seed
from stylegan.metrics.specs import MetricSpec

STREAM = "ppl"


def crop_face(img: torch.Tensor) -> torch.Tensor:
    """The official PPL crop of square NCHW images: rows [3c, 7c), columns [2c, 6c) with c = size // 8."""
    if img.shape[2] != img.shape[3]:
        raise ValueError(f"PPL crops square images, got {img.shape[2]}x{img.shape[3]}")
    c = img.shape[2] // 8
    return img[:, :, 3 * c: 7 * c, 2 * c: 6 * c]


def downsample_to_256(img: torch.Tensor, img_resolution: int) -> torch.Tensor:
    """Box-average by ``img_resolution // 256`` (only networks above 256² are reduced, crop or not)."""
    f = img_resolution // 256
    if f <= 1:
        return img
    n, ch, h, w = img.shape
    return img.reshape(n, ch, h // f, f, w // f, f).mean(dim=(3, 5))


class PathSampler:
    """Renders PPL sample pairs for one spec and returns their scaled LPIPS distances."""

    def __init__(self, G: nn.Module, vgg16: torch.jit.ScriptModule, spec: MetricSpec, device: torch.device):
        self.G = copy.deepcopy(G).eval().requires_grad_(False).to(device)  # its noise buffers get overwritten
        self.noise = [buf for name, buf in sorted(self.G.named_buffers()) if name.endswith(".noise_const")]
        self.vgg16, self.spec, self.device = vgg16, spec, device

    def pair_batch(self, index: int, seed: int, labels: LabelPool) -> torch.Tensor:
        """Distances ``[ppl_batch]`` (float64, CPU) for batch ``index`` of the PPL stream."""
        spec, G, B = self.spec, self.G, self.spec.ppl_batch
        gen = torch.Generator().manual_seed(unit_seed(seed, STREAM, index))
        t = torch.rand([B], generator=gen) * (1.0 if spec.sampling == "full" else 0.0)
        z0, z1 = torch.randn([2 * B, G.z_dim], generator=gen).chunk(2)
        c = labels.draw(gen, B)
        for buf in self.noise:
            buf.copy_(torch.randn(buf.shape, generator=gen))
        t, z0, z1, c = (x.to(self.device) for x in (t, z0, z1, c))
        cc = torch.cat([c, c])
        if spec.space == "w":
            w0, w1 = G.mapping(torch.cat([z0, z1]), cc).chunk(2)
            tt = t[:, None, None]
            ws = torch.cat([w0.lerp(w1, tt), w0.lerp(w1, tt + spec.epsilon)])
        else:
            tt = t[:, None]
            ws = G.mapping(torch.cat([slerp(z0, z1, tt), slerp(z0, z1, tt + spec.epsilon)]), cc)
        img = G.synthesis(ws, noise_mode="const", force_fp32=True)
        if spec.crop:
            img = crop_face(img)
        img = downsample_to_256(img, G.img_resolution)
        f0, f1 = lpips_features(self.vgg16, (img + 1) * (255 / 2)).chunk(2)
        return ((f0 - f1).square().sum(dim=1) / spec.epsilon ** 2).double().cpu()


def ppl_distances(G: nn.Module, vgg16: torch.jit.ScriptModule, spec: MetricSpec, *, seed: int, labels: LabelPool,
                  device: torch.device, shard: Shard, progress: bool = False) -> np.ndarray:
    """The ``spec.num_gen`` scaled distances ``[N]`` in sample order (each rank computes its batches)."""
    sampler = PathSampler(G, vgg16, spec, device)
    B = spec.ppl_batch
    num_units = -(-spec.num_gen // B)
    sizes = np.minimum(B, spec.num_gen - B * np.arange(num_units)).astype(np.int64)
    mine = list(shard.units(num_units))
    parts = []
    with torch.no_grad():
        for u in tqdm(mine, desc=f"{spec.label} paths", unit="batch", disable=not (progress and shard.is_main),
                      leave=False):
            parts.append(sampler.pair_batch(u, seed, labels)[: sizes[u]])
    local = torch.cat(parts) if parts else torch.zeros([0], dtype=torch.float64)
    return gather_units(local, sizes, shard).numpy()
