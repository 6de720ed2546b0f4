"""Our StyleGAN2 networks written in rosinality/stylegan2-pytorch's checkpoint layout.

``stylegan convert --to rosinality`` writes ``g_ema`` and ``latent_avg`` (what its ``convert_weight.py``
writes, and what pSp, e4e, StyleCLIP and the rest load), plus ``g`` and ``d`` where the source has them.
The file is a plain ``torch.save`` of tensors: ``torch.load(weights_only=True)`` reads it, and
rosinality's ``Generator(size, style_dim, n_mlp, channel_multiplier)`` takes ``g_ema`` with
``load_state_dict(strict=True)``.

Only networks its code can run are written: an unconditional RGB skip generator with z and w of one size,
an lrelu mapping network of square layers, noise in every layer, the [1, 3, 3, 1] filter, and its channel
table (512 up to 32², then 16384·m/res up to 1024²). Anything else is one error saying why. Two
differences do not change the weights: a mapping learning-rate multiplier other than rosinality's 0.01 is
folded into the stored weights, and conv_clamp (ADA's ±256 activation clamp) has no counterpart there; it
only matters where an activation exceeds ±256, which trained networks do not reach in fp32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from stylegan.errors import StyleGANError
from stylegan.formats.rosinality import (BLUR_TAPS, MAPPING_LR, discriminator_kernels, discriminator_pairs,
                                         generator_kernels, generator_pairs)
from stylegan.networks.stylegan2 import Discriminator, Generator
from stylegan.ops import make_filter

MAX_SIZE = 1024  # rosinality's channel table stops at 1024²
_LOW_RES_CHANNELS = 512  # its channels up to 32²
_MULTIPLIED_BASE = 16384  # its channels from 64² on: 16384 · channel_multiplier / res


class CannotExpress(Exception):
    """A network that rosinality's code cannot run; the message says why."""


@dataclass
class Export:
    """What ``rosinality_checkpoint`` made: the dict to save, the Generator's settings, and notes."""

    checkpoint: dict[str, Any]
    size: int
    style_dim: int
    n_mlp: int
    channel_multiplier: int
    notes: list[str] = field(default_factory=list)


def _require(condition: bool, why: str) -> None:
    if not condition:
        raise CannotExpress(why)


def channel_multiplier(widths: dict[int, int], network: str) -> int:
    """rosinality's ``channel_multiplier`` for a channel table (2 where every resolution is ≤ 32²)."""
    _require(all(w == _LOW_RES_CHANNELS for r, w in widths.items() if r <= 32),
             f"{network} has other than {_LOW_RES_CHANNELS} channels up to 32x32, as rosinality's table has")
    upper = {r: w for r, w in widths.items() if r >= 64}
    if not upper:
        return 2  # its default; the table does not depend on it below 64²
    m = upper[64] * 64 // _MULTIPLIED_BASE if 64 in upper else 0
    _require(m >= 1 and all(w * r == _MULTIPLIED_BASE * m for r, w in upper.items()),
             f"{network}'s channels above 32x32 ({', '.join(f'{r}: {w}' for r, w in upper.items())}) are not "
             "16384·m/resolution for a whole channel_multiplier m, as rosinality's table has")
    return m


def _default_filter(module: nn.Module) -> bool:
    expected = make_filter(list(BLUR_TAPS))
    return all(torch.equal(buf.cpu(), expected) for name, buf in module.named_buffers()
               if name.endswith("resample_filter"))


def check_generator(G: nn.Module) -> tuple[int, float]:
    """(channel_multiplier, mapping lr multiplier) of a generator rosinality can run; CannotExpress otherwise."""
    kind = getattr(G, "class_name", type(G).__name__)
    _require(type(G) is Generator, f"it is a {kind}; rosinality's layout holds StyleGAN2 generators only")
    _require(G.c_dim == 0, f"it is conditional (c_dim={G.c_dim}); rosinality's Generator takes no labels")
    _require(G.img_channels == 3, f"it makes {G.img_channels}-channel images; rosinality's makes RGB")
    _require(G.z_dim == G.w_dim, f"its z_dim ({G.z_dim}) and w_dim ({G.w_dim}) differ; rosinality uses one "
                                 "style_dim for both")
    _require(8 <= G.img_resolution <= MAX_SIZE, f"its resolution {G.img_resolution} is outside rosinality's 8..1024")
    layers = list(G.mapping.layers())
    _require(all(layer.in_features == layer.out_features == G.w_dim and layer.activation == "lrelu"
                 for layer in layers), "its mapping layers are not square lrelu layers of w_dim, as rosinality's are")
    rates = {layer.bias_gain for layer in layers}
    _require(len(rates) == 1, "its mapping layers use different learning-rate multipliers")
    blocks = G.synthesis.blocks()
    _require(all(b.architecture == "skip" for b in blocks),
             f"it is a {blocks[-1].architecture} generator; rosinality's is the skip architecture")
    convs = [m for b in blocks for m in (getattr(b, "conv0", None), b.conv1) if m is not None]
    _require(all(c.use_noise and c.activation == "lrelu" and c.weight.shape[-1] == 3 for c in convs),
             "its synthesis layers are not 3x3 lrelu convolutions with noise, as rosinality's are")
    _require(_default_filter(G.synthesis), f"it resamples with a filter other than {list(BLUR_TAPS)}")
    m = channel_multiplier({b.resolution: b.out_channels for b in blocks}, "it")
    return m, rates.pop()


def check_discriminator(D: nn.Module, size: int) -> None:
    """CannotExpress unless rosinality's Discriminator(size, m) can run ``D``."""
    kind = getattr(D, "class_name", type(D).__name__)
    _require(type(D) is Discriminator, f"it is a {kind}")
    _require(D.c_dim == 0, f"it is conditional (c_dim={D.c_dim})")
    _require(D.img_channels == 3 and D.img_resolution == size, "its image size or channels differ from G's")
    blocks = D.blocks()
    _require(all(b.architecture == "resnet" for b in blocks), f"it is a {blocks[0].architecture} discriminator; "
                                                              "rosinality's is resnet")
    mbstd = D.b4.mbstd
    _require(mbstd is not None and mbstd.group_size == 4 and mbstd.num_channels == 1,
             "its minibatch-std layer is not rosinality's (groups of 4, 1 channel)")
    _require(D.b4.architecture == "resnet" and D.b4.cmap_dim == 0, "its epilogue differs from rosinality's")
    _require(_default_filter(D), f"it resamples with a filter other than {list(BLUR_TAPS)}")
    widths = {b.resolution: b.conv0.weight.shape[0] for b in blocks}
    widths[4] = D.b4.in_channels
    channel_multiplier(widths, "its")


def _theirs_from_ours(module: nn.Module, pairs: list, kernels: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """rosinality's state dict from ours: each tensor reshaped as the pair says, plus its fixed kernels."""
    ours = module.state_dict()
    state = {}
    for pair in pairs:
        value = ours[pair.ours].detach().to("cpu", torch.float32)
        state[pair.theirs] = value.reshape(pair.their_shape(tuple(value.shape))).clone().contiguous()
    state.update({name: kernel.clone() for name, kernel in kernels.items()})
    return state


def generator_state(G: nn.Module, lr: float) -> dict[str, torch.Tensor]:
    """rosinality's Generator state dict for our ``G`` (mapping weights rescaled to its lr 0.01)."""
    n_mlp = G.mapping.num_layers
    state = _theirs_from_ours(G, generator_pairs(G.img_resolution, n_mlp), generator_kernels(G.img_resolution))
    if lr != MAPPING_LR:  # weight · lr / √fan_in is what both compute; keep the product, change the storage
        for i in range(1, n_mlp + 1):
            for name in (f"style.{i}.weight", f"style.{i}.bias"):
                state[name] = state[name] * (lr / MAPPING_LR)
    return state


def rosinality_checkpoint(net: dict[str, Any], source: str) -> Export:
    """The rosinality checkpoint for ``net`` (``load_network``'s dict): g_ema, latent_avg, and g and d
    where ``net`` has them and rosinality can run them (a D it cannot run is left out with a note).

    Raises StyleGANError when its G_ema cannot be written in this layout, saying why.
    """
    G = net["G_ema"]
    try:
        m, lr = check_generator(G)
        g_lr = check_generator(net["G"])[1] if "G" in net else None
    except CannotExpress as e:
        raise StyleGANError(f"cannot write {source} in rosinality's layout: {e}",
                            "rosinality's code builds only unconditional RGB StyleGAN2 skip generators with its "
                            "channel table; keep this network as .safetensors") from None
    checkpoint: dict[str, Any] = {"g_ema": generator_state(G, lr),
                                  "latent_avg": G.mapping.w_avg.detach().to("cpu", torch.float32).clone()}
    notes = []
    if "G" in net:
        checkpoint["g"] = generator_state(net["G"], g_lr)
    if "D" in net:
        try:
            check_discriminator(net["D"], G.img_resolution)
            checkpoint["d"] = _theirs_from_ours(net["D"], discriminator_pairs(G.img_resolution),
                                                discriminator_kernels(G.img_resolution))
        except CannotExpress as e:
            notes.append(f"d left out: rosinality's Discriminator cannot run it ({e})")
    if any(getattr(layer, "conv_clamp", None) is not None for layer in G.modules()):
        notes.append("conv_clamp is not in rosinality's code (it matters only for activations beyond the clamp)")
    return Export(checkpoint, G.img_resolution, G.w_dim, G.mapping.num_layers, m, notes)


def write_checkpoint(export: Export, path: Any) -> None:
    """Write an export with ``torch.save`` (a torch zip archive of tensors only). Callers make it atomic."""
    torch.save(export.checkpoint, path)
