"""How close a projection is to its target: MSE, PSNR, SSIM (pixel statistics) and LPIPS (VGG16 features).

All take uint8 images ``[H, W, C]`` (or float arrays on the same 0–255 scale) of the same shape.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from stylegan.explore.projector import lpips_input
from stylegan.metrics.detectors import lpips_features

DATA_RANGE = 255.0
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5  # Wang et al. 2004: 11×11 Gaussian window, σ = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03

METRICS = ("psnr", "ssim", "mse", "lpips")


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"images must both be [H, W, C] of one shape, got {list(a.shape)} and {list(b.shape)}")
    return a, b


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared difference over all pixels and channels, on the 0–255 scale."""
    a, b = _pair(a, b)
    return float(np.mean((a - b) ** 2))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, ``10 · log10(255² / MSE)``; ``inf`` for identical images."""
    err = mse(a, b)
    return math.inf if err == 0 else 10 * math.log10(DATA_RANGE ** 2 / err)


def _gaussian_window() -> torch.Tensor:
    x = torch.arange(SSIM_WINDOW, dtype=torch.float64) - SSIM_WINDOW // 2
    g = torch.exp(-x.square() / (2 * SSIM_SIGMA ** 2))
    return g / g.sum()


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004), mean over channels and all window positions.

    Gaussian 11×11 window with σ 1.5 applied without padding (only positions where the window fits),
    population statistics, C1 = (0.01·255)², C2 = (0.03·255)². Images need both sides ≥ 11.
    """
    a, b = _pair(a, b)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {a.shape[1]}x{a.shape[0]}")
    g = _gaussian_window()
    x = torch.from_numpy(np.stack([a, b]).transpose(0, 3, 1, 2).reshape(-1, 1, *a.shape[:2]))  # [2C, 1, H, W]

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable Gaussian, 'valid' region only
        return F.conv2d(F.conv2d(t, g.reshape(1, 1, 1, -1)), g.reshape(1, 1, -1, 1))

    c = a.shape[2]
    xa, xb = x[:c], x[c:]
    mu_a, mu_b = blur(xa), blur(xb)
    var_a = blur(xa * xa) - mu_a ** 2
    var_b = blur(xb * xb) - mu_b ** 2
    cov = blur(xa * xb) - mu_a * mu_b
    c1, c2 = (SSIM_K1 * DATA_RANGE) ** 2, (SSIM_K2 * DATA_RANGE) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def lpips(detector: torch.jit.ScriptModule, a: np.ndarray, b: np.ndarray) -> float:
    """LPIPS-style distance: squared L2 between VGG16 LPIPS features (images larger than 256² area-downsampled).

    The same distance the projector minimises; ``detector`` from ``load_detector('vgg16', ...)``.
    """
    _pair(a, b)
    device = next(iter(detector.parameters()), torch.zeros([])).device
    x = torch.from_numpy(np.stack([a, b]).astype(np.float32)).permute(0, 3, 1, 2).to(device)
    with torch.no_grad():
        f = lpips_features(detector, lpips_input(x))
    return float((f[0] - f[1]).square().sum())


def image_quality(target: np.ndarray, image: np.ndarray,
                  detector: torch.jit.ScriptModule | None) -> dict[str, float | None]:
    """All four metrics for one pair; SSIM is None below 11×11 pixels, LPIPS None without a detector."""
    return {
        "psnr": psnr(target, image),
        "ssim": ssim(target, image) if min(target.shape[:2]) >= SSIM_WINDOW else None,
        "mse": mse(target, image),
        "lpips": lpips(detector, target, image) if detector is not None else None,
    }
