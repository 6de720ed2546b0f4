"""VGG16 in torchvision's layout ("PyTorch's VGG16"), as MMGeneration's precision/recall uses it.

Weights: torchvision's ``vgg16-397923af.pth``. Its state dict names the convolutions by their index in a
flat ``features`` sequence (ReLUs and max pools take indices too: ``features.0``, ``features.2``,
``features.5`` …) and the fully connected layers ``classifier.0``, ``classifier.3``, ``classifier.6``;
we keep those names, as they are the file's layout.

Call convention (the same as the other detectors): uint8 NCHW RGB in [0, 255], any size →
``return_features=True``: the 4096 features MMGeneration's precision/recall uses ``[N, 4096]``.
Its preprocessing, which differs from NVIDIA's VGG16 and from ImageNet practice: x / 127.5 − 1 (no
ImageNet mean/std), nearest-neighbour resize to 224×224, the convolutional stack, flatten (7·7·512),
then the first fully connected layer, ReLU, and the second fully connected layer *without* its ReLU.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

INPUT_SIZE = 224
FEATURE_DIM = 4096
NUM_CLASSES = 1000
STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))  # channels per conv, per stage


def conv_indices(stages: Sequence[Sequence[int]] = STAGES) -> list[int]:
    """Each convolution's index in torchvision's flat ``features`` list (every conv is followed by a ReLU,
    every stage by a max pool, and each of those takes an index)."""
    indices, i = [], 0
    for stage in stages:
        for _ in stage:
            indices.append(i)
            i += 2
        i += 1
    return indices


class TorchvisionVGG16(nn.Module):
    """VGG16 with torchvision's parameter names; ``stages``/``hidden`` exist for small test stand-ins only."""

    def __init__(self, stages: Sequence[Sequence[int]] = STAGES, hidden: int = FEATURE_DIM,
                 num_classes: int = NUM_CLASSES):
        super().__init__()
        self.stages = tuple(tuple(s) for s in stages)
        self.features = nn.Module()  # registered under the flat indices torchvision uses
        cin = 3
        for index, cout in zip(conv_indices(self.stages), [c for s in self.stages for c in s]):
            self.features.add_module(str(index), nn.Conv2d(cin, cout, 3, padding=1))
            cin = cout
        side = INPUT_SIZE // 2 ** len(self.stages)
        self.classifier = nn.Module()
        self.classifier.add_module("0", nn.Linear(cin * side * side, hidden))
        self.classifier.add_module("3", nn.Linear(hidden, hidden))
        self.classifier.add_module("6", nn.Linear(hidden, num_classes))

    def conv_stack(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 3, 224, 224]`` → ``[N, 512, 7, 7]``: each stage's 3×3 convolutions with ReLU, then a 2×2 max pool."""
        convs = iter(self.features.children())
        for stage in self.stages:
            for _ in stage:
                x = F.relu(next(convs)(x))
            x = F.max_pool2d(x, 2)
        return x

    def forward(self, img: torch.Tensor, return_features: bool = False, resize_images: bool = True,
                return_lpips: bool = False) -> torch.Tensor:
        if img.ndim != 4 or img.shape[1] != 3:
            raise ValueError(f"expected NCHW RGB images, got shape {list(img.shape)}")
        if return_lpips or not resize_images:
            raise ValueError("torchvision's VGG16 serves precision/recall only; LPIPS (PPL, projector) needs "
                             "NVIDIA's vgg16.pt")
        x = img.to(torch.float32) / 127.5 - 1
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="nearest")
        x = self.conv_stack(x).flatten(1)
        fc1, fc2, fc3 = self.classifier.children()
        features = fc2(F.relu(fc1(x)))  # dropout is off in inference
        if return_features:
            return features
        return torch.softmax(fc3(F.relu(features)), dim=1)
