"""A synthesis network's inner layers as pictures: which layers give feature maps, and one layer's activations.

Layers are found by running the network once with forward hooks on the synthesis network's modules (two
levels deep, e.g. ``b16`` and ``b16.conv1`` for StyleGAN2, ``L3_52_512`` for StyleGAN3) and keeping those whose
output is (or starts with) a 4-D feature map ``[N, C, H, W]``. Nothing about a particular architecture is
assumed, so every generator we load can be looked into.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from stylegan.errors import StyleGANError
from stylegan.pixels import float_to_bytes


@dataclass(frozen=True)
class LayerInfo:
    """A layer whose output can be shown: its module name in ``G.synthesis`` and its map's channels and size."""

    name: str
    channels: int
    height: int
    width: int


def _feature_map(output) -> torch.Tensor | None:
    """The 4-D tensor a module returned (the first one of a tuple), or None."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    return output if isinstance(output, torch.Tensor) and output.ndim == 4 else None


def _candidate_modules(G: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in G.synthesis.named_modules() if name and name.count(".") <= 1}


def activation_layers(G: nn.Module, ws: torch.Tensor) -> list[LayerInfo]:
    """The layers of ``G.synthesis`` that output feature maps, in the order they run, found by rendering ``ws``."""
    seen: dict[str, LayerInfo] = {}
    handles = []

    def hook_for(name: str):
        def record(_module, _inputs, output) -> None:
            fmap = _feature_map(output)
            if fmap is not None and name not in seen:
                seen[name] = LayerInfo(name, fmap.shape[1], fmap.shape[2], fmap.shape[3])
        return record

    try:
        for name, module in _candidate_modules(G).items():
            handles.append(module.register_forward_hook(hook_for(name)))
        with torch.no_grad():
            G.synthesis(ws, noise_mode="const")
    finally:
        for handle in handles:
            handle.remove()
    return list(seen.values())


def layer_activation(G: nn.Module, ws: torch.Tensor, layer: str, noise_mode: str = "const") -> torch.Tensor:
    """The feature map ``[C, H, W]`` (float32, CPU) that ``layer`` outputs when ``G.synthesis`` renders ``ws [1, …]``."""
    module = _candidate_modules(G).get(layer)
    if module is None:
        raise StyleGANError(f"the network has no layer {layer[:80]!r}", "pick a layer listed by /api/networks")
    captured: list[torch.Tensor] = []

    def record(_module, _inputs, output) -> None:
        fmap = _feature_map(output)
        if fmap is not None and not captured:
            captured.append(fmap[0].detach().to(device="cpu", dtype=torch.float32))

    handle = module.register_forward_hook(record)
    try:
        with torch.no_grad():
            G.synthesis(ws, noise_mode=noise_mode)
    finally:
        handle.remove()
    if not captured:
        raise StyleGANError(f"layer {layer!r} gives no feature map", "pick a layer listed by /api/networks")
    return captured[0]


def activation_image(fmap: torch.Tensor, channel: int | None) -> np.ndarray:
    """A feature map ``[C, H, W]`` → uint8 ``[H, W, 1]`` (``channel``) or ``[H, W, 3]`` (the first three as RGB).

    Each shown channel is divided by its largest absolute value, so it spans [-1, 1] (0 stays mid-grey), and
    then mapped to bytes as images are. A map with fewer than three channels repeats its last one.
    """
    if channel is None:
        picked = fmap[[min(i, fmap.shape[0] - 1) for i in range(3)]]
    elif 0 <= channel < fmap.shape[0]:
        picked = fmap[channel:channel + 1]
    else:
        raise StyleGANError(f"channel {channel} is out of range for a layer of {fmap.shape[0]} channels",
                            f"pick a channel between 0 and {fmap.shape[0] - 1}")
    peak = picked.abs().amax(dim=(1, 2), keepdim=True).clamp(min=1e-8)
    picked = torch.nan_to_num(picked / peak)
    return float_to_bytes(picked).permute(1, 2, 0).numpy()
