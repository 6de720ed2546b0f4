"""The FID Inception-v3 of pytorch-fid and MMGeneration ("PyTorch Inception"), in plain PyTorch.

It is the TensorFlow ``inception-2015-12-05`` graph ported to PyTorch, weights
``pt_inception-2015-12-05-6726825d.pth``. Two things differ from a textbook Inception-v3 and both change
the numbers, so they are kept: the average pools inside the mixed blocks leave padding out of the mean
(TensorFlow's rule), and the last mixed block pools its fourth branch with a *max* pool.

Module and parameter names follow the state dict of that file (``Conv2d_1a_3x3.conv.weight``,
``Mixed_7c.branch_pool.bn.running_var``, ``fc.weight`` …): they are the file's layout, the only thing
our code shares with it.

Call convention (the same as the other detectors): uint8 NCHW RGB in [0, 255], any size →
``return_features=True``: the 2048 pool features ``[N, 2048]``; otherwise softmax class probabilities
``[N, 1008]`` (``no_output_bias`` drops the classifier's bias, as Inception Score does).
Preprocessing as pytorch-fid for the same image files: x / 255, bilinear resize to 299×299
(``align_corners=False``), then 2x − 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008  # the TF graph's 1008 outputs (1000 ImageNet classes and 8 unused)
BN_EPS = 1e-3  # the batch-norm epsilon of the ported TF graph


class ConvUnit(nn.Module):
    """Convolution without bias → batch norm (inference statistics, eps 1e-3) → ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _same_size_pool(x: torch.Tensor, kind: str) -> torch.Tensor:
    """3×3 stride-1 pooling that keeps the size: 'avg' averages only the real (unpadded) pixels."""
    if kind == "max":
        return F.max_pool2d(x, 3, stride=1, padding=1)
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class Mixed35(nn.Module):
    """35×35 block: 1×1, 5×5, double 3×3 and pooled branches (64 + 64 + 96 + ``pool_channels`` out)."""

    def __init__(self, cin: int, pool_channels: int):
        super().__init__()
        self.branch1x1 = ConvUnit(cin, 64, 1)
        self.branch5x5_1 = ConvUnit(cin, 48, 1)
        self.branch5x5_2 = ConvUnit(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvUnit(cin, 64, 1)
        self.branch3x3dbl_2 = ConvUnit(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvUnit(96, 96, 3, padding=1)
        self.branch_pool = ConvUnit(cin, pool_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = self.branch5x5_2(self.branch5x5_1(x))
        deep = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        pooled = self.branch_pool(_same_size_pool(x, "avg"))
        return torch.cat([self.branch1x1(x), wide, deep, pooled], dim=1)


class Reduce35(nn.Module):
    """35×35 → 17×17: strided 3×3, strided double 3×3, and a strided max pool (384 + 96 + cin out)."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = ConvUnit(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvUnit(cin, 64, 1)
        self.branch3x3dbl_2 = ConvUnit(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvUnit(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        deep = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), deep, F.max_pool2d(x, 3, stride=2)], dim=1)


class Mixed17(nn.Module):
    """17×17 block with 7×7 convolutions factorised into 1×7 and 7×1 (4 × 192 out)."""

    def __init__(self, cin: int, mid: int):
        super().__init__()
        row, col = dict(kernel=(1, 7), padding=(0, 3)), dict(kernel=(7, 1), padding=(3, 0))
        self.branch1x1 = ConvUnit(cin, 192, 1)
        self.branch7x7_1 = ConvUnit(cin, mid, 1)
        self.branch7x7_2 = ConvUnit(mid, mid, **row)
        self.branch7x7_3 = ConvUnit(mid, 192, **col)
        self.branch7x7dbl_1 = ConvUnit(cin, mid, 1)
        self.branch7x7dbl_2 = ConvUnit(mid, mid, **col)
        self.branch7x7dbl_3 = ConvUnit(mid, mid, **row)
        self.branch7x7dbl_4 = ConvUnit(mid, mid, **col)
        self.branch7x7dbl_5 = ConvUnit(mid, 192, **row)
        self.branch_pool = ConvUnit(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = self.branch7x7dbl_1(x)
        for step in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = step(double)
        pooled = self.branch_pool(_same_size_pool(x, "avg"))
        return torch.cat([self.branch1x1(x), single, double, pooled], dim=1)


class Reduce17(nn.Module):
    """17×17 → 8×8: strided 3×3 after 1×1, strided 3×3 after a factorised 7×7, strided max pool
    (320 + 192 + cin out)."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = ConvUnit(cin, 192, 1)
        self.branch3x3_2 = ConvUnit(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvUnit(cin, 192, 1)
        self.branch7x7x3_2 = ConvUnit(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvUnit(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvUnit(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        short = self.branch3x3_2(self.branch3x3_1(x))
        long = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([short, long, F.max_pool2d(x, 3, stride=2)], dim=1)


class Mixed8(nn.Module):
    """8×8 block: 3×3 convolutions split into parallel 1×3 and 3×1 halves (320 + 768 + 768 + 192 out).

    ``pool`` is the fourth branch's pooling: 'avg' (padding left out of the mean) or 'max' (the last block
    of this port)."""

    def __init__(self, cin: int, pool: str):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        row, col = dict(kernel=(1, 3), padding=(0, 1)), dict(kernel=(3, 1), padding=(1, 0))
        self.branch1x1 = ConvUnit(cin, 320, 1)
        self.branch3x3_1 = ConvUnit(cin, 384, 1)
        self.branch3x3_2a = ConvUnit(384, 384, **row)
        self.branch3x3_2b = ConvUnit(384, 384, **col)
        self.branch3x3dbl_1 = ConvUnit(cin, 448, 1)
        self.branch3x3dbl_2 = ConvUnit(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvUnit(384, 384, **row)
        self.branch3x3dbl_3b = ConvUnit(384, 384, **col)
        self.branch_pool = ConvUnit(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = self.branch_pool(_same_size_pool(x, self.pool))
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(a), self.branch3x3_2b(a),
                          self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d), pooled], dim=1)

    def extra_repr(self) -> str:
        return f"pool={self.pool}"


class PyTorchInception(nn.Module):
    """pytorch-fid's FID Inception-v3 (see the module docstring for its call convention)."""

    def __init__(self):
        super().__init__()
        # Stem: 299 → 35×35×192.
        self.Conv2d_1a_3x3 = ConvUnit(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvUnit(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvUnit(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvUnit(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvUnit(80, 192, 3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = Mixed35(192, 32), Mixed35(256, 64), Mixed35(288, 64)
        self.Mixed_6a = Reduce35(288)
        self.Mixed_6b, self.Mixed_6c = Mixed17(768, 128), Mixed17(768, 160)
        self.Mixed_6d, self.Mixed_6e = Mixed17(768, 160), Mixed17(768, 192)
        self.Mixed_7a = Reduce17(768)
        self.Mixed_7b, self.Mixed_7c = Mixed8(1280, pool="avg"), Mixed8(2048, pool="max")
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def pool_features(self, x: torch.Tensor) -> torch.Tensor:
        """Network input ``[N, 3, H, W]`` in [−1, 1] → the spatial mean of the last block ``[N, 2048]``."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))

    def forward(self, img: torch.Tensor, return_features: bool = False, no_output_bias: bool = False) -> torch.Tensor:
        if img.ndim != 4 or img.shape[1] != 3:
            raise ValueError(f"expected NCHW RGB images, got shape {list(img.shape)}")
        x = img.to(torch.float32) / 255
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        features = self.pool_features(2 * x - 1)
        if return_features:
            return features
        logits = F.linear(features, self.fc.weight, None if no_output_bias else self.fc.bias)
        return torch.softmax(logits, dim=1)
