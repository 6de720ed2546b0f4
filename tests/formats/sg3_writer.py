"""Test-only writer of official-FORMAT StyleGAN3 pickles (stylegan3-t / stylegan3-r), without NVIDIA code.

The official stylegan3 repository persists ``training.networks_stylegan3.Generator`` with its submodules
``SynthesisNetwork``, ``SynthesisInput``, ``SynthesisLayer``, ``MappingNetwork`` and
``FullyConnectedLayer``; the generator's constructor arguments are stored as called by its training
script (``z_dim``, ``w_dim``, ``mapping_kwargs``, ``channel_base``, ... flat, plus ``c_dim``,
``img_resolution``, ``img_channels``). Here our modules are written under those class names, through
tests/formats/official_writer.py's pickler, with the weights randomised so every tensor matters.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stylegan.networks.stylegan3 import StyleGAN3Generator
from tests.formats.official_writer import OfficialPickler, official_names

# Our class → the official class name the files carry.
OFFICIAL_NAMES = {"StyleGAN3Generator": "Generator", "StyleGAN3SynthesisNetwork": "SynthesisNetwork"}


def tiny_sg3_kwargs(config: str = "t", resolution: int = 16, **overrides: Any) -> dict[str, Any]:
    """The official G_kwargs of ``--cfg stylegan3-<config>``, shrunk (few channels, few layers)."""
    kwargs: dict[str, Any] = dict(z_dim=8, w_dim=8, mapping_kwargs={"num_layers": 2}, channel_base=64,
                                  channel_max=8, magnitude_ema_beta=0.5 ** (32 / 20e3), num_layers=6,
                                  c_dim=0, img_resolution=resolution, img_channels=3)
    if config == "r":
        kwargs.update(conv_kernel=1, channel_base=128, channel_max=16, use_radial_filters=True)
    kwargs.update(overrides)
    return kwargs


def randomized_sg3(kwargs: dict[str, Any], seed: int = 0) -> StyleGAN3Generator:
    """A StyleGAN3Generator with random weights everywhere: biases, magnitudes, w_avg, the input transform."""
    with torch.random.fork_rng(devices=[]):  # the designed frequencies are random too: same seed, same network
        torch.manual_seed(seed)
        G = StyleGAN3Generator(**kwargs).eval().requires_grad_(False)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in G.state_dict().items():
            if name.endswith(("up_filter", "down_filter", "freqs", "phases")):
                continue  # designed values: keep them
            if name.endswith("magnitude_ema"):
                t.copy_(torch.rand([], generator=g) + 0.5)
            elif name.endswith("transform"):
                t.copy_(torch.eye(3) + 0.05 * torch.randn([3, 3], generator=g))
                t[2] = torch.tensor([0.0, 0.0, 1.0])
            elif name.endswith("input.affine.weight"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.3)
            elif name.endswith("input.affine.bias"):
                t.copy_(torch.tensor([1.0, 0.2, 0.1, -0.1]))
            elif name.endswith("w_avg"):
                t.copy_(torch.randn(t.shape, generator=g))
            else:
                t.copy_(torch.randn(t.shape, generator=g) * (0.3 if name.endswith("bias") else 1.0))
                if name.startswith("mapping.fc"):
                    # The mapping runs its stored values times lr_multiplier 0.01: unit-size stored values would
                    # give nearly the same w (and image) for every seed, and tests across seeds would pass vacuously.
                    t.mul_(100)
    G.init_kwargs = dict(kwargs)  # stored as the training script passed them
    return G


class _SG3Pickler(OfficialPickler):
    """The official pickler, writing our StyleGAN3 classes under their official names."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, nn.Module) and not isinstance(obj, nn.Parameter):
            reconstruct, (meta,) = super().reducer_override(obj)
            meta["class_name"] = OFFICIAL_NAMES.get(meta["class_name"], meta["class_name"])
            return reconstruct, (meta,)
        return NotImplemented


def sg3_pickle_bytes(snapshot: Any, **options: Any) -> bytes:
    buffer = io.BytesIO()
    with official_names() as (reconstruct, easydict):
        _SG3Pickler(buffer, reconstruct, easydict, **options).dump(snapshot)
    return buffer.getvalue()


def write_sg3_pickle(path: Path, snapshot: Any, **options: Any) -> Path:
    """``snapshot`` (a dict like ``{'G_ema': G, ...}`` or a bare generator) as an official-format pickle."""
    path.write_bytes(sg3_pickle_bytes(snapshot, **options))
    return path


__all__ = ["tiny_sg3_kwargs", "randomized_sg3", "write_sg3_pickle", "sg3_pickle_bytes", "OFFICIAL_NAMES"]
