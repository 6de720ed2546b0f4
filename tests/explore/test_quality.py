"""Projection scores against independent references: direct formulas, and SSIM by scipy.ndimage in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage
import torch

from stylegan.explore.quality import image_quality, lpips, mse, psnr, ssim
from stylegan.metrics.detectors import load_detector
from tests.detector_standins import write_detectors


def images(seed=0, shape=(24, 20, 3)):
    rng = np.random.RandomState(seed)
    a = rng.randint(0, 256, size=shape).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.randint(-40, 41, size=shape), 0, 255).astype(np.uint8)
    return a, b


def reference_ssim(a, b):
    """Wang et al. 2004 with scipy's Gaussian (σ 1.5, truncated at 3.5σ = an 11-tap window), 'valid' region."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    scores = []
    for ch in range(a.shape[2]):
        x, y = a[:, :, ch], b[:, :, ch]
        f = lambda t: scipy.ndimage.gaussian_filter(t, 1.5, truncate=3.5)[5:-5, 5:-5]  # noqa: E731
        mx, my = f(x), f(y)
        vx, vy, cxy = f(x * x) - mx ** 2, f(y * y) - my ** 2, f(x * y) - mx * my
        scores.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))
    return float(np.mean(scores))


def test_mse_and_psnr_formulas():
    a, b = images()
    expected = ((a.astype(np.float64) - b) ** 2).sum() / a.size
    assert mse(a, b) == pytest.approx(expected, rel=1e-12)
    assert psnr(a, b) == pytest.approx(20 * math.log10(255) - 10 * math.log10(expected), rel=1e-12)
    assert psnr(a, a) == math.inf and mse(a, a) == 0


@pytest.mark.parametrize("seed, shape", [(0, (24, 20, 3)), (1, (16, 16, 1)), (2, (40, 33, 3))])
def test_ssim_matches_an_independent_float64_implementation(seed, shape):
    a, b = images(seed, shape)
    assert ssim(a, b) == pytest.approx(reference_ssim(a, b), abs=1e-9)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert ssim(a, b) < 0.99  # and it notices the noise


def test_ssim_needs_11_pixels():
    a, b = images(shape=(10, 30, 1))
    with pytest.raises(ValueError, match="at least 11"):
        ssim(a, b)
    assert image_quality(a, b, None)["ssim"] is None


def test_lpips_is_the_squared_feature_distance(tmp_path):
    vgg = load_detector("vgg16", detector_dir=write_detectors(tmp_path))
    a, b = images()
    with torch.no_grad():
        fa = vgg(torch.from_numpy(a).permute(2, 0, 1)[None].float(), resize_images=False, return_lpips=True)
        fb = vgg(torch.from_numpy(b).permute(2, 0, 1)[None].float(), resize_images=False, return_lpips=True)
    assert lpips(vgg, a, b) == pytest.approx(float((fa - fb).square().sum()), rel=1e-5)
    assert lpips(vgg, a, a) == 0
    q = image_quality(a, b, vgg)
    assert set(q) == {"psnr", "ssim", "mse", "lpips"} and q["lpips"] > 0
