"""The StyleGAN2 projector: find the w (and noise maps) whose image best matches a target image.

Follows the published stylegan2-ada-pytorch algorithm: start from w_avg (the mean of 10 000 mapped
samples, z drawn with ``RandomState(123)``); optimise one w (or one per layer with ``w_plus``, an
extension) and every ``noise_const`` map with Adam (betas 0.9, 0.999) under a learning rate that ramps up
over the first 5 % of steps and down with a cosine over the last 25 %; add Gaussian noise of
``w_std · 0.05 · max(0, 1 − t / 0.75)²`` to w at each step; minimise the LPIPS-style VGG16 distance (images
area-downsampled to 256 when larger) plus 1e5 × a noise regulariser (squared autocorrelation at shift 1
in x and y, over a pyramid of 2×2-averaged copies down to 8×8); renormalise the noise maps after each step.
The network passed in is never modified: the optimisation runs on a copy.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from stylegan.errors import StyleGANError
from stylegan.explore.generate import class_labels, network_device
from stylegan.metrics.detectors import lpips_features

W_STATS_SEED = 123  # the official projector draws its w_avg samples from RandomState(123)
DEFAULT_SEED = 303  # the official projector's default --seed
LPIPS_MAX_SIZE = 256  # VGG16 was trained on 224² crops; larger images are area-downsampled to 256²


@dataclass(frozen=True)
class ProjectorConfig:
    """Hyperparameters of the projector; the defaults are the official ones."""

    num_steps: int = 1000
    w_avg_samples: int = 10000
    initial_learning_rate: float = 0.1
    initial_noise_factor: float = 0.05  # w noise at step 0, in units of w_std
    lr_rampdown_length: float = 0.25  # fraction of the steps over which the lr decays (cosine) at the end
    lr_rampup_length: float = 0.05  # fraction of the steps over which the lr rises linearly at the start
    noise_ramp_length: float = 0.75  # fraction of the steps after which no more noise is added to w
    regularize_noise_weight: float = 1e5
    w_plus: bool = False  # optimise one w per layer (W+) instead of one shared w

    def check(self) -> None:
        if self.num_steps < 1:
            raise StyleGANError(f"--num-steps {self.num_steps} is too small", "use at least 1 step")
        if self.w_avg_samples < 1:
            raise StyleGANError(f"w_avg_samples {self.w_avg_samples} is too small", "use at least 1 sample")


@dataclass
class Projection:
    """The optimisation's record: ``ws`` float32 CPU ``[num_steps, num_ws, w_dim]`` (w after each step),
    the perceptual distance and total loss before each step's update, the w_avg it started from."""

    ws: torch.Tensor
    dist: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    w_avg: torch.Tensor | None = None  # [num_ws, w_dim]

    @property
    def final_ws(self) -> torch.Tensor:
        """The projected ws ``[1, num_ws, w_dim]`` (the official ``projected_w.npz`` layout)."""
        return self.ws[-1:].clone()


def learning_rate(step: int, config: ProjectorConfig) -> float:
    """The official schedule: linear ramp-up, flat, cosine ramp-down; ``step`` counts from 0."""
    t = step / config.num_steps
    ramp = min(1.0, (1.0 - t) / config.lr_rampdown_length)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp *= min(1.0, t / config.lr_rampup_length)
    return config.initial_learning_rate * ramp


def w_noise_scale(step: int, w_std: float, config: ProjectorConfig) -> float:
    """Std of the Gaussian noise added to w at ``step``: decays quadratically to 0 at ``noise_ramp_length``."""
    t = step / config.num_steps
    return w_std * config.initial_noise_factor * max(0.0, 1.0 - t / config.noise_ramp_length) ** 2


def w_statistics(G: nn.Module, num_samples: int = 10000, class_idx: int | None = None,
                 batch_size: int = 1000) -> tuple[torch.Tensor, float]:
    """``(w_avg [w_dim], w_std)`` of ``num_samples`` mapped latents (z from ``RandomState(123)``), no truncation.

    ``w_std`` is the root mean squared distance of a sample from w_avg (summed over w's components).
    For a conditional network the samples use ``class_idx``'s label.
    """
    z = np.random.RandomState(W_STATS_SEED).randn(num_samples, G.z_dim)
    ws = []
    with torch.no_grad():
        for start in range(0, num_samples, batch_size):
            zb = torch.from_numpy(z[start:start + batch_size]).to(torch.float32).to(network_device(G))
            ws.append(G.mapping(zb, class_labels(G, class_idx, len(zb)))[:, 0].cpu().double())
    w = torch.cat(ws)
    w_avg = w.mean(0)
    w_std = float(((w - w_avg).square().sum() / num_samples).sqrt())
    return w_avg.float(), w_std


def noise_regularization(noise_maps: list[torch.Tensor]) -> torch.Tensor:
    """Sum over maps and pyramid levels (down to 8×8) of the squared mean products with 1-pixel shifts."""
    reg = torch.zeros([], device=noise_maps[0].device) if noise_maps else torch.zeros([])
    for v in noise_maps:
        noise = v[None, None]
        while True:
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=3)).mean().square()
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=2)).mean().square()
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2)
    return reg


def lpips_input(images: torch.Tensor) -> torch.Tensor:
    """Float NCHW in [0, 255] → what the VGG16 LPIPS features take: area-downsampled to 256² when larger."""
    if images.shape[2] > LPIPS_MAX_SIZE:
        images = F.interpolate(images, size=(LPIPS_MAX_SIZE, LPIPS_MAX_SIZE), mode="area")
    return images


def check_projectable(G: nn.Module) -> None:
    """Raise StyleGANError for networks the VGG16 distance cannot compare (not 1 or 3 channels)."""
    if G.img_channels not in (1, 3):
        raise StyleGANError(f"cannot project with a {G.img_channels}-channel network",
                            "the VGG16 distance compares grayscale or RGB images only")


def project(
    G: nn.Module,
    target: torch.Tensor | np.ndarray,
    detector: torch.jit.ScriptModule,
    *,
    config: ProjectorConfig = ProjectorConfig(),
    seed: int = DEFAULT_SEED,
    class_idx: int | None = None,
    progress: bool = True,
    on_step: Callable[[int, float, float], None] | None = None,
) -> Projection:
    """Project ``target`` (uint8 or float ``[C, H, W]`` in [0, 255], G's channels and resolution) into W.

    ``detector`` is the VGG16 from ``load_detector('vgg16', ...)`` (on G's device). ``seed`` drives the
    initial noise maps and the w noise. ``on_step(step, dist, loss)`` is called after every step.
    Returns the w after every step; ``result.final_ws`` is the projection.
    """
    config.check()
    check_projectable(G)
    target = torch.as_tensor(np.asarray(target) if isinstance(target, np.ndarray) else target)
    expected = (G.img_channels, G.img_resolution, G.img_resolution)
    if tuple(target.shape) != expected:
        raise StyleGANError(f"target has shape {list(target.shape)}, the network needs {list(expected)}",
                            "load targets with load_target(path, G.img_resolution, G.img_channels)")
    device = network_device(G)
    w_avg, w_std = w_statistics(G, config.w_avg_samples, class_idx)
    G = copy.deepcopy(G).eval().requires_grad_(False)  # the noise maps are optimised in place
    noise_maps = [buf for name, buf in G.synthesis.named_buffers() if "noise_const" in name]
    gen = torch.Generator(device=device).manual_seed(seed)

    with torch.no_grad():
        target_features = lpips_features(detector, lpips_input(target[None].to(device, torch.float32)))
    num_opt = G.num_ws if config.w_plus else 1
    w_opt = w_avg.to(device).reshape(1, 1, -1).repeat(1, num_opt, 1).requires_grad_(True)
    for buf in noise_maps:
        buf.copy_(torch.randn(buf.shape, generator=gen, device=device))
        buf.requires_grad_(True)
    optimizer = torch.optim.Adam([w_opt, *noise_maps], betas=(0.9, 0.999), lr=config.initial_learning_rate)

    ws_out = torch.zeros([config.num_steps, num_opt, G.w_dim], device=device)
    result = Projection(ws=ws_out, w_avg=w_avg.reshape(1, -1).repeat(G.num_ws, 1))
    with tqdm(total=config.num_steps, unit="step", desc="project", disable=not progress) as bar:
        for step in range(config.num_steps):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, config)
            noise = torch.randn(w_opt.shape, generator=gen, device=device) * w_noise_scale(step, w_std, config)
            ws = (w_opt + noise).expand(-1, G.num_ws, -1) if not config.w_plus else w_opt + noise
            synth = (G.synthesis(ws, noise_mode="const") + 1) * (255 / 2)
            dist = (lpips_features(detector, lpips_input(synth)) - target_features).square().sum()
            loss = dist + noise_regularization(noise_maps) * config.regularize_noise_weight
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                ws_out[step] = w_opt.detach()[0]
                for buf in noise_maps:
                    buf -= buf.mean()
                    buf *= buf.square().mean().rsqrt()
            dist_value, loss_value = float(dist.detach()), float(loss.detach())
            result.dist.append(dist_value)
            result.loss.append(loss_value)
            bar.set_postfix(dist=f"{dist_value:.4g}", loss=f"{loss_value:.4g}", refresh=False)
            bar.update(1)
            if on_step is not None:
                on_step(step, dist_value, loss_value)
    ws_out = ws_out.cpu()
    result.ws = ws_out.expand(-1, G.num_ws, -1) if not config.w_plus else ws_out
    return result


def projector_uint8(images: torch.Tensor) -> np.ndarray:
    """Float NCHW in about [-1, 1] → uint8 NHWC as the official projector stores them.

    ``(x + 1) · 127.5``, clamped to [0, 255], truncated (``generate`` uses ``x · 127.5 + 128``: at most 1 apart).
    """
    x = ((images.detach().to(torch.float32) + 1) * (255 / 2)).clamp(0, 255)
    return x.permute(0, 2, 3, 1).to(torch.uint8).cpu().numpy()
