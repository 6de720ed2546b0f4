"""torchvision's VGG16 as MMGeneration's precision/recall uses it: torchvision's key layout, read without
torch.load, and features equal to an independent float64 re-derivation of that recipe."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from stylegan.metrics.detectors import DETECTORS, weights_module
from stylegan.metrics.vgg16_tv import TorchvisionVGG16
from tests.detector_standins import vgg16_tv_state, write_vgg16_tv

# torchvision's vgg16 (configuration "D") as vgg16-397923af.pth stores it: 13 convolutions at these
# indices of `features`, three linear layers at `classifier.0/3/6`.
TORCHVISION_VGG16 = {
    **{f"features.{i}.weight": shape for i, shape in zip(
        (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28),
        [(64, 3, 3, 3), (64, 64, 3, 3), (128, 64, 3, 3), (128, 128, 3, 3), (256, 128, 3, 3), (256, 256, 3, 3),
         (256, 256, 3, 3), (512, 256, 3, 3), (512, 512, 3, 3), (512, 512, 3, 3), (512, 512, 3, 3),
         (512, 512, 3, 3), (512, 512, 3, 3)])},
    "classifier.0.weight": (4096, 25088), "classifier.3.weight": (4096, 4096), "classifier.6.weight": (1000, 4096),
}

SMALL = ((4, 4), (6, 6), (8, 8, 8), (8, 8, 8), (8, 8, 8))  # same depth and layout, narrow: a quick stand-in


def reference_features(state: dict, images_uint8: torch.Tensor, stages) -> torch.Tensor:
    """Float64: x/127.5−1 (no ImageNet mean/std) → nearest resize to 224 → conv/ReLU stages with 2×2 max
    pools → flatten → fc1 → ReLU → fc2 (classifier[:4]: dropout is identity, no ReLU after fc2)."""
    sd = {k: v.double() for k, v in state.items()}
    x = F.interpolate(images_uint8.double() / 127.5 - 1, size=(224, 224), mode="nearest")
    index = 0
    for stage in stages:
        for _ in stage:
            x = F.conv2d(x, sd[f"features.{index}.weight"], sd[f"features.{index}.bias"], padding=1).clamp(min=0)
            index += 2
        x = F.max_pool2d(x, 2)
        index += 1
    x = x.flatten(1)
    x = (x @ sd["classifier.0.weight"].T + sd["classifier.0.bias"]).clamp(min=0)
    return x @ sd["classifier.3.weight"].T + sd["classifier.3.bias"]


def test_the_layout_is_torchvisions_vgg16():
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in TorchvisionVGG16().state_dict().items()}
    assert {k: v for k, v in shapes.items() if k.endswith("weight")} == TORCHVISION_VGG16
    assert {k[: -len("bias")] for k in shapes if k.endswith("bias")} == {k[: -len("weight")] for k in TORCHVISION_VGG16}
    spec = DETECTORS["vgg16_tv"]
    assert (spec.file, spec.url) == ("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth")


def test_features_equal_a_float64_rederivation_of_mmgenerations_recipe(tmp_path, monkeypatch):
    state = vgg16_tv_state(SMALL, hidden=64, num_classes=10, seed=8)
    path = write_vgg16_tv(tmp_path, state)
    # The small stand-in is read through the same reader and key/shape checks as the real file.
    small = dataclasses.replace(DETECTORS["vgg16_tv"], architecture=lambda: TorchvisionVGG16(SMALL, 64, 10))
    detector = weights_module(small, path)
    g = torch.Generator().manual_seed(3)
    for size in (16, 300):  # upsampled and downsampled by the nearest resize
        img = torch.randint(0, 256, (2, 3, size, size), generator=g, dtype=torch.uint8)
        ours = detector(img, return_features=True)
        ref = reference_features(state, img, SMALL)
        assert ours.shape == (2, 64)
        # float32 rounding over 13 convolutions (up to 72 terms each) and two linear layers: ~1e-6 relative.
        rel = ((ours.double() - ref).norm() / ref.norm()).item()
        assert rel < 1e-4, rel
        # No ReLU after fc2: MMGeneration's features keep their negative values.
        assert (ours < 0).any()


def test_the_real_sized_file_loads_with_its_shapes(tmp_path):
    path = write_vgg16_tv(tmp_path)
    detector = weights_module(DETECTORS["vgg16_tv"], path)
    features = detector(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), return_features=True)
    assert features.shape == (1, 4096) and features.dtype == torch.float32
