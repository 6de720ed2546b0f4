"""Tiny TorchScript stand-ins for the official feature detectors, with the same call signatures.

The real files (inception-2015-12-05.pt, vgg16.pt) cannot be downloaded here. These are small random but
fixed networks saved with ``torch.jit.save`` under the official file names, so code under test loads them
exactly as it would load the real ones (``--detector-dir`` / ``$STYLEGAN_DETECTOR_DIR``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class TinyInception(nn.Module):
    """uint8 NCHW RGB → features ``[N, feature_dim]`` or softmax probabilities ``[N, num_classes]``."""

    def __init__(self, feature_dim: int = 16, num_classes: int = 12, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Parameter(torch.randn(feature_dim, 3, 3, 3, generator=g) * 0.5)
        self.fc_weight = nn.Parameter(torch.randn(num_classes, feature_dim, generator=g))
        self.fc_bias = nn.Parameter(torch.randn(num_classes, generator=g))

    def forward(self, img: torch.Tensor, return_features: bool = False, no_output_bias: bool = False) -> torch.Tensor:
        x = img.to(torch.float32) / 127.5 - 1
        x = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
        x = torch.tanh(F.conv2d(x, self.conv, padding=1))
        features = x.mean(dim=(2, 3)) * 4 + x.std(dim=(2, 3))
        if return_features:
            return features
        logits = features @ self.fc_weight.t()
        if not no_output_bias:
            logits = logits + self.fc_bias
        return torch.softmax(logits, dim=1)


class TinyVGG16(nn.Module):
    """uint8/float NCHW RGB in [0, 255] → fc features ``[N, feature_dim]`` or LPIPS-style features."""

    def __init__(self, feature_dim: int = 24, seed: int = 1):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Parameter(torch.randn(8, 3, 3, 3, generator=g) * 0.5)
        self.conv2 = nn.Parameter(torch.randn(8, 8, 3, 3, generator=g) * 0.3)
        self.fc = nn.Parameter(torch.randn(feature_dim, 8 * 4 * 4, generator=g) * 0.2)

    def forward(self, img: torch.Tensor, resize_images: bool = True, return_lpips: bool = False,
                return_features: bool = False) -> torch.Tensor:
        x = img.to(torch.float32) / 127.5 - 1
        if resize_images:
            x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
        f1 = F.relu(F.conv2d(x, self.conv1, padding=1))
        f2 = F.relu(F.conv2d(F.avg_pool2d(f1, 2), self.conv2, padding=1))
        if return_lpips:
            # LPIPS-style: unit-normalise each layer's channel vectors, scale by 1/sqrt(h*w), concatenate.
            parts = []
            for f in (f1, f2):
                f = f / (f.square().sum(dim=1, keepdim=True) + 1e-10).sqrt()
                parts.append(f.flatten(1) / (f.shape[2] * f.shape[3]) ** 0.5)
            return torch.cat(parts, dim=1)
        pooled = F.adaptive_avg_pool2d(f2, (4, 4)).flatten(1)
        return F.relu(pooled @ self.fc.t())


def write_detectors(folder: str | Path) -> Path:
    """Save both stand-ins under the official file names in ``folder``; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(TinyInception().eval()), str(folder / "inception-2015-12-05.pt"))
    torch.jit.save(torch.jit.script(TinyVGG16().eval()), str(folder / "vgg16.pt"))
    return folder
