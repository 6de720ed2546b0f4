"""Tiny TorchScript stand-ins for the official feature detectors, with the same call signatures.

The real files (inception-2015-12-05.pt, vgg16.pt) cannot be downloaded here. These are small random but
fixed networks saved with ``torch.jit.save`` under the official file names, so code under test loads them
exactly as it would load the real ones (``--detector-dir`` / ``$STYLEGAN_DETECTOR_DIR``).
"""

from __future__ import annotations

import warnings
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


# ---------------------------------------------------------------------------------------------------------
# Stand-ins of realistic cost for benchmarks: the Inception-v3 and VGG16 layer shapes (random weights, batch
# norm folded into a conv bias), so their FLOPs and memory traffic are those of the real detectors.


class _Conv(nn.Module):
    def __init__(self, cin: int, cout: int, kernel, stride: int = 1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


class _MixedA(nn.Module):  # 35×35
    def __init__(self, cin: int, pool: int):
        super().__init__()
        self.b1 = _Conv(cin, 64, 1)
        self.b5 = nn.Sequential(_Conv(cin, 48, 1), _Conv(48, 64, 5, padding=2))
        self.b3 = nn.Sequential(_Conv(cin, 64, 1), _Conv(64, 96, 3, padding=1), _Conv(96, 96, 3, padding=1))
        self.bp = _Conv(cin, pool, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b5(x), self.b3(x), self.bp(F.avg_pool2d(x, 3, 1, 1))], 1)


class _ReduceB(nn.Module):  # 35 → 17
    def __init__(self, cin: int):
        super().__init__()
        self.b3 = _Conv(cin, 384, 3, stride=2)
        self.bd = nn.Sequential(_Conv(cin, 64, 1), _Conv(64, 96, 3, padding=1), _Conv(96, 96, 3, stride=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b3(x), self.bd(x), F.max_pool2d(x, 3, 2)], 1)


class _MixedC(nn.Module):  # 17×17, factorised 7×7
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.b1 = _Conv(cin, 192, 1)
        self.b7 = nn.Sequential(_Conv(cin, c7, 1), _Conv(c7, c7, (1, 7), padding=(0, 3)),
                                _Conv(c7, 192, (7, 1), padding=(3, 0)))
        self.bd = nn.Sequential(_Conv(cin, c7, 1), _Conv(c7, c7, (7, 1), padding=(3, 0)),
                                _Conv(c7, c7, (1, 7), padding=(0, 3)), _Conv(c7, c7, (7, 1), padding=(3, 0)),
                                _Conv(c7, 192, (1, 7), padding=(0, 3)))
        self.bp = _Conv(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b7(x), self.bd(x), self.bp(F.avg_pool2d(x, 3, 1, 1))], 1)


class _ReduceD(nn.Module):  # 17 → 8
    def __init__(self, cin: int):
        super().__init__()
        self.b3 = nn.Sequential(_Conv(cin, 192, 1), _Conv(192, 320, 3, stride=2))
        self.b7 = nn.Sequential(_Conv(cin, 192, 1), _Conv(192, 192, (1, 7), padding=(0, 3)),
                                _Conv(192, 192, (7, 1), padding=(3, 0)), _Conv(192, 192, 3, stride=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b3(x), self.b7(x), F.max_pool2d(x, 3, 2)], 1)


class _MixedE(nn.Module):  # 8×8, split 3×3
    def __init__(self, cin: int):
        super().__init__()
        self.b1 = _Conv(cin, 320, 1)
        self.b3 = _Conv(cin, 384, 1)
        self.b3a, self.b3b = _Conv(384, 384, (1, 3), padding=(0, 1)), _Conv(384, 384, (3, 1), padding=(1, 0))
        self.bd = nn.Sequential(_Conv(cin, 448, 1), _Conv(448, 384, 3, padding=1))
        self.bda, self.bdb = _Conv(384, 384, (1, 3), padding=(0, 1)), _Conv(384, 384, (3, 1), padding=(1, 0))
        self.bp = _Conv(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, d = self.b3(x), self.bd(x)
        return torch.cat([self.b1(x), self.b3a(a), self.b3b(a), self.bda(d), self.bdb(d),
                          self.bp(F.avg_pool2d(x, 3, 1, 1))], 1)


class CostlyInception(nn.Module):
    """Inception-v3 layer shapes at 299×299 (~5.7 GMAC per image), official call signature, random weights."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(_Conv(3, 32, 3, stride=2), _Conv(32, 32, 3), _Conv(32, 64, 3, padding=1),
                                  nn.MaxPool2d(3, 2), _Conv(64, 80, 1), _Conv(80, 192, 3), nn.MaxPool2d(3, 2))
        self.mixed = nn.Sequential(_MixedA(192, 32), _MixedA(256, 64), _MixedA(288, 64), _ReduceB(288),
                                   _MixedC(768, 128), _MixedC(768, 160), _MixedC(768, 160), _MixedC(768, 192),
                                   _ReduceD(768), _MixedE(1280), _MixedE(2048))
        self.fc = nn.Linear(2048, 1008)

    def forward(self, img: torch.Tensor, return_features: bool = False, no_output_bias: bool = False) -> torch.Tensor:
        x = F.interpolate(img.to(torch.float32), size=(299, 299), mode="bilinear", align_corners=False)
        features = self.mixed(self.stem(x / 127.5 - 1)).mean(dim=(2, 3))
        if return_features:
            return features
        logits = features @ self.fc.weight.t()
        if not no_output_bias:
            logits = logits + self.fc.bias
        return torch.softmax(logits, dim=1)


class CostlyVGG16(nn.Module):
    """VGG16 layer shapes (~15.5 GMAC per 224×224 image), official call signature, random weights."""

    def __init__(self):
        super().__init__()
        widths = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
        stages, cin = [], 3
        for stage in widths:
            layers = []
            for c in stage:
                layers.append(_Conv(cin, c, 3, padding=1))
                cin = c
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.fc6, self.fc7 = nn.Linear(512 * 7 * 7, 4096), nn.Linear(4096, 4096)

    def forward(self, img: torch.Tensor, resize_images: bool = True, return_lpips: bool = False,
                return_features: bool = False) -> torch.Tensor:
        x = img.to(torch.float32)
        if resize_images:
            x = F.interpolate(x, size=(224, 224), mode="area")
        x = x / 127.5 - 1
        parts: list[torch.Tensor] = []
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = stage(x)
            f = x / (x.square().sum(dim=1, keepdim=True) + 1e-10).sqrt()
            parts.append(f.flatten(1) / float(f.shape[2] * f.shape[3]) ** 0.5)
        if return_lpips:
            return torch.cat(parts, dim=1)
        x = F.adaptive_avg_pool2d(F.max_pool2d(x, 2), (7, 7)).flatten(1)
        return F.relu(self.fc7(F.relu(self.fc6(x))))


def write_detectors(folder: str | Path, realistic: bool = False) -> Path:
    """Save both stand-ins under the official file names in ``folder``; returns the folder.

    ``realistic`` writes the full-size networks of realistic cost (for benchmarks) instead of the tiny ones.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    inception, vgg = (CostlyInception(), CostlyVGG16()) if realistic else (TinyInception(), TinyVGG16())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is what the official files are
        torch.jit.save(torch.jit.script(inception.eval()), str(folder / "inception-2015-12-05.pt"))
        torch.jit.save(torch.jit.script(vgg.eval()), str(folder / "vgg16.pt"))
    return folder


# ---------------------------------------------------------------------------------------------------------
# State-dict stand-ins for the PyTorch-ecosystem detectors (pytorch-fid's FID Inception, torchvision's VGG16):
# random weights in their key layouts, written with torch.save (zip format) under their file names. Weights
# are scaled (He) and batch-norm statistics kept near 1 so that activations stay of order one through depth.


def _he(shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    fan_in = 1
    for d in shape[1:]:
        fan_in *= d
    return torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5


def pt_inception_state(seed: int = 3, batches_tracked: bool = True) -> dict[str, torch.Tensor]:
    """A random state dict with exactly the keys and shapes of pt_inception-2015-12-05-6726825d.pth."""
    from stylegan.metrics.inception_pt import PyTorchInception

    with torch.device("meta"):
        layout = PyTorchInception().state_dict()
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for name, t in layout.items():
        shape = tuple(t.shape)
        if name.endswith("num_batches_tracked"):
            if batches_tracked:
                state[name] = torch.tensor(0)
        elif name.endswith("conv.weight") or name == "fc.weight":
            state[name] = _he(shape, g)
        elif name.endswith("bn.weight"):
            state[name] = 0.8 + 0.4 * torch.rand(shape, generator=g)
        elif name.endswith("running_var"):
            state[name] = 0.5 + torch.rand(shape, generator=g)
        else:  # bn.bias, running_mean, fc.bias
            state[name] = 0.1 * torch.randn(shape, generator=g)
    return state


def vgg16_tv_state(stages=None, hidden: int = 4096, num_classes: int = 1000, seed: int = 4) -> dict[str, torch.Tensor]:
    """A random state dict in torchvision's vgg16 layout (``features.N``, ``classifier.{0,3,6}``); the default
    sizes are those of vgg16-397923af.pth, smaller ``stages``/``hidden`` make quick stand-ins."""
    from stylegan.metrics.vgg16_tv import STAGES, TorchvisionVGG16

    with torch.device("meta"):
        layout = TorchvisionVGG16(stages or STAGES, hidden, num_classes).state_dict()
    g = torch.Generator().manual_seed(seed)
    return {name: _he(tuple(t.shape), g) if name.endswith("weight") else 0.05 * torch.randn(tuple(t.shape), generator=g)
            for name, t in layout.items()}


def _save_state(folder: str | Path, file_name: str, state: dict) -> Path:
    """``torch.save`` ``state`` as ``folder/file_name``, creating the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / file_name)
    return folder / file_name


def write_pt_inception(folder: str | Path, state: dict | None = None) -> Path:
    """Save a PyTorch-Inception stand-in (``state``, default :func:`pt_inception_state`) as the official file name."""
    return _save_state(folder, "pt_inception-2015-12-05-6726825d.pth", pt_inception_state() if state is None else state)


def write_vgg16_tv(folder: str | Path, state: dict | None = None) -> Path:
    """Save a torchvision-VGG16 stand-in (``state``, default full-size random weights) as the official file name."""
    return _save_state(folder, "vgg16-397923af.pth", vgg16_tv_state() if state is None else state)
