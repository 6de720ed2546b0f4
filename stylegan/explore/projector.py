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
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from stylegan.devices import module_device
from stylegan.errors import StyleGANError, setting
from stylegan.explore.labels import class_labels
from stylegan.metrics.detectors import lpips_features
from stylegan.ops.allocator import tune_cpu_allocator
from stylegan.precision import active_precision, inference_precision

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
            raise StyleGANError(f"{setting('num_steps')} is {self.num_steps}, but must be at least 1",
                                "use at least 1 step")
        if self.w_avg_samples < 1:
            raise StyleGANError(f"{setting('w_avg_samples', '')} is {self.w_avg_samples}, but must be at least 1",
                                "use at least 1 sample")


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
    """The step size at ``step`` (from 0): a linear warm-up, a plateau, then a half-cosine cool-down to 0.

    With ``t = step / num_steps`` the rate is ``initial · min(1, t / rampup) · (1 − cos(π·p)) / 2`` where
    ``p = min(1, (1 − t) / rampdown)`` is 1 on the plateau and falls to 0 at the last step.
    """
    progress = step / config.num_steps
    warm_up = min(1.0, progress / config.lr_rampup_length)
    cool_down_phase = min(1.0, (1.0 - progress) / config.lr_rampdown_length)
    cool_down = (1.0 - math.cos(math.pi * cool_down_phase)) / 2
    return config.initial_learning_rate * warm_up * cool_down


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
            zb = torch.from_numpy(z[start:start + batch_size]).to(torch.float32).to(module_device(G))
            ws.append(G.mapping(zb, class_labels(G, class_idx, len(zb)))[:, 0].cpu().double())
    w = torch.cat(ws)
    w_avg = w.mean(0)
    w_std = float(((w - w_avg).square().sum() / num_samples).sqrt())
    return w_avg.float(), w_std


NOISE_PYRAMID_FLOOR = 8  # the regulariser's coarsest level: halving stops once a map is 8×8 or smaller


def noise_pyramid(noise_map: torch.Tensor) -> Iterator[torch.Tensor]:
    """``noise_map`` ``[H, W]`` and its 2×2-box-averaged halvings, finest first, ending at 8×8 (or the map itself
    when it is that small already). Sides are powers of two, as every StyleGAN2 noise map's are."""
    level = noise_map
    yield level
    while level.shape[-2] > NOISE_PYRAMID_FLOOR:
        rows, cols = level.shape[-2] // 2, level.shape[-1] // 2
        level = level.reshape(rows, 2, cols, 2).mean(dim=(1, 3))
        yield level


def neighbour_correlation(level: torch.Tensor) -> torch.Tensor:
    """Squared mean of ``level`` times itself shifted by one pixel (wrapping), summed over the x and y shifts.

    White noise gives about 0; any spatial structure the optimiser hides in a map makes it grow.
    """
    along_x = (level * level.roll(1, dims=-1)).mean()
    along_y = (level * level.roll(1, dims=-2)).mean()
    return along_x.square() + along_y.square()


def noise_regularization(noise_maps: list[torch.Tensor]) -> torch.Tensor:
    """The noise penalty: :func:`neighbour_correlation` summed over every level of every map's pyramid."""
    terms = [neighbour_correlation(level) for noise_map in noise_maps for level in noise_pyramid(noise_map)]
    return torch.stack(terms).sum() if terms else torch.zeros([])


def standardize_noise_(noise_maps: list[torch.Tensor]) -> None:
    """Rescale each map in place to mean 0 and mean square 1 (the optimiser's steps drift both)."""
    with torch.no_grad():
        for noise_map in noise_maps:
            centred = noise_map - noise_map.mean()
            noise_map.copy_(centred / centred.square().mean().sqrt())


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


def checked_target(G: nn.Module, target: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``target`` as a tensor ``[C, H, W]``; StyleGANError unless it has G's channels and resolution."""
    target = torch.as_tensor(np.asarray(target) if isinstance(target, np.ndarray) else target)
    expected = (G.img_channels, G.img_resolution, G.img_resolution)
    if tuple(target.shape) != expected:
        raise StyleGANError(f"target has shape {list(target.shape)}, the network needs {list(expected)}",
                            "load targets with load_target(path, G.img_resolution, G.img_channels)")
    return target


def optimised_noise_maps(synthesis: nn.Module, gen: torch.Generator) -> list[torch.Tensor]:
    """The ``noise_const`` buffers of ``synthesis``, refilled with N(0, 1) from ``gen`` and made trainable.

    They are changed in place, so ``synthesis`` must be the projector's private copy.
    """
    maps = [buffer for name, buffer in synthesis.named_buffers() if "noise_const" in name]
    for noise_map in maps:
        noise_map.copy_(torch.randn(noise_map.shape, generator=gen, device=noise_map.device))
        noise_map.requires_grad_(True)
    return maps


def broadcast_ws(w: torch.Tensor, num_ws: int) -> torch.Tensor:
    """The optimised ``[1, 1 or num_ws, w_dim]`` as synthesis input ``[1, num_ws, w_dim]``."""
    return w if w.shape[1] == num_ws else w.expand(-1, num_ws, -1)


def image_features(images: torch.Tensor, detector: torch.jit.ScriptModule) -> torch.Tensor:
    """LPIPS features of generator output ``[N, C, H, W]`` in about [-1, 1] (scaled to the detector's [0, 255])."""
    return lpips_features(detector, lpips_input((images + 1) * 127.5))


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
    target = checked_target(G, target)
    device = module_device(G)
    if device.type == "cpu":
        tune_cpu_allocator()  # every step allocates the same large activations: reuse them (1.8× at 1024²)
    w_avg, w_std = w_statistics(G, config.w_avg_samples, class_idx)
    G = copy.deepcopy(G).eval().requires_grad_(False)  # a private copy: its noise maps get optimised
    gen = torch.Generator(device=device).manual_seed(seed)
    noise_maps = optimised_noise_maps(G.synthesis, gen)
    with torch.no_grad():
        target_features = lpips_features(detector, lpips_input(target[None].to(device, torch.float32)))

    w_count = G.num_ws if config.w_plus else 1
    w = w_avg.to(device).expand(1, w_count, -1).clone().requires_grad_(True)  # [1, w_count, w_dim]
    optimised = [w, *noise_maps]
    optimizer = torch.optim.Adam(optimised, lr=config.initial_learning_rate, betas=(0.9, 0.999))
    history = torch.empty([config.num_steps, w_count, G.w_dim], device=device)
    result = Projection(ws=history, w_avg=w_avg.expand(G.num_ws, -1).clone())

    # The private copy's weights never change below, so the ops may keep their weight-only work (Winograd
    # transforms, kernel layouts) across steps: enter the keeping context, at the caller's precision. The
    # optimisation differentiates whatever the caller's grad mode (a worker thread may run under no_grad).
    with tqdm(total=config.num_steps, unit="step", desc="project", disable=not progress) as bar, \
            inference_precision(active_precision()), torch.enable_grad():
        for step in range(config.num_steps):
            optimizer.param_groups[0]["lr"] = learning_rate(step, config)
            jitter = torch.randn(w.shape, generator=gen, device=device) * w_noise_scale(step, w_std, config)
            images = G.synthesis(broadcast_ws(w + jitter, G.num_ws), noise_mode="const")
            dist = (image_features(images, detector) - target_features).square().sum()
            loss = dist + config.regularize_noise_weight * noise_regularization(noise_maps)
            optimizer.zero_grad()
            # Gradients for w and the noise maps only: a detector whose weights require grad would otherwise
            # get its weight gradients computed (a third of its backward pass) and summed into its .grad.
            loss.backward(inputs=optimised)
            optimizer.step()
            standardize_noise_(noise_maps)
            history[step] = w.detach()[0]
            result.dist.append(float(dist.detach()))
            result.loss.append(float(loss.detach()))
            bar.set_postfix(dist=f"{result.dist[-1]:.4g}", loss=f"{result.loss[-1]:.4g}", refresh=False)
            bar.update(1)
            if on_step is not None:
                on_step(step, result.dist[-1], result.loss[-1])
    result.ws = broadcast_ws(history.cpu(), G.num_ws)
    return result


def projector_uint8(images: torch.Tensor) -> np.ndarray:
    """Float NCHW in about [-1, 1] → uint8 NHWC as the official projector stores them.

    ``(x + 1) · 127.5``, clamped to [0, 255], truncated (``generate`` uses ``x · 127.5 + 128``: at most 1 apart).
    """
    x = ((images.detach().to(torch.float32) + 1) * (255 / 2)).clamp(0, 255)
    return x.permute(0, 2, 3, 1).to(torch.uint8).cpu().numpy()
