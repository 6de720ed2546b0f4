"""MMGeneration / mmagic StyleGAN2 checkpoints, written by the tests, and MMGeneration's forward pass in float64.

The tables give every state-dict entry of MMGeneration's ``StyleGANv2Generator(out_size, style_channels,
num_mlps, channel_multiplier)`` and ``StyleGAN2Discriminator(in_size, channel_multiplier)`` (from its
generator_discriminator_v2.py / styleganv2_modules.py: equalized-lr weights stored as ``weight_orig``,
``style_modulation.linear``, ``noise_injector``, ``injected_noise_{i}`` buffers, blur kernels as buffers),
and mmagic's conditional variant (``embed``, mapping without its PixelNorm at index 0, ``w_avg``).

``ref_generator`` / ``ref_discriminator`` rename its keys to rosinality's and run the float64 reference of
tests/formats/rosinality_writer.py: MMGeneration's StyleGAN2 modules descend from rosinality's model.py and
compute the same thing, but for what this module states itself: equalized-lr weights stored as ``*_orig``
(the scale applied in the forward pass, as rosinality's), ``style_modulation.linear`` for ``modulation``,
PixelNorm as ``x / (rms(x) + 1e-6)`` (rosinality: ``x · rsqrt(mean(x²) + 1e-8)``), mmagic's label
embedding ahead of the mapping, and the final ``torch.flip`` of mmagic's ``bgr2rgb``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

from tests.formats import rosinality_writer as rosinality
from tests.formats.rosinality_writer import SMALL_CHANNELS, equal_linear


def generator_table(size: int, style: int, n_mlp: int, ch: dict[int, int], noise_size: int | None = None,
                    cond_size: int = 0, cond_channels: int | None = None, out_channels: int = 3,
                    w_avg: bool = False) -> dict[str, tuple]:
    """Every state-dict entry of MMGeneration's generator: name → shape."""
    t: dict[str, tuple] = {}
    noise_size = noise_size or style
    first, fan_in = 1, noise_size
    if cond_size:
        cond_channels = cond_channels or style
        t["embed.linear.weight_orig"], t["embed.bias"] = (cond_channels, cond_size), (cond_channels,)
        first, fan_in = 0, noise_size + cond_channels
    for i in range(n_mlp):
        t[f"style_mapping.{i + first}.linear.weight_orig"] = (style, fan_in if i == 0 else style)
        t[f"style_mapping.{i + first}.bias"] = (style,)
    t["constant_input.input"] = (1, ch[4], 4, 4)

    def styled(name, cin, cout, upsample):
        t[f"{name}.conv.weight_orig"] = (1, cout, cin, 3, 3)
        t[f"{name}.conv.style_modulation.linear.weight_orig"] = (cin, style)
        t[f"{name}.conv.style_modulation.bias"] = (cin,)
        if upsample:
            t[f"{name}.conv.blur.kernel"] = (4, 4)
        t[f"{name}.noise_injector.weight"], t[f"{name}.activate.bias"] = (1,), (cout,)

    def to_rgb(name, cin, upsample):
        if upsample:
            t[f"{name}.upsample.kernel"] = (4, 4)
        t[f"{name}.conv.weight_orig"] = (1, out_channels, cin, 1, 1)
        t[f"{name}.conv.style_modulation.linear.weight_orig"] = (cin, style)
        t[f"{name}.conv.style_modulation.bias"] = (cin,)
        t[f"{name}.bias"] = (1, out_channels, 1, 1)

    styled("conv1", ch[4], ch[4], False)
    to_rgb("to_rgb1", ch[4], False)
    log_size = int(math.log2(size))
    cin = ch[4]
    for k, i in enumerate(range(3, log_size + 1)):
        styled(f"convs.{2 * k}", cin, ch[2**i], True)
        styled(f"convs.{2 * k + 1}", ch[2**i], ch[2**i], False)
        to_rgb(f"to_rgbs.{k}", ch[2**i], True)
        cin = ch[2**i]
    for layer in range(log_size * 2 - 3):
        res = 2 ** ((layer + 5) // 2)
        t[f"injected_noise_{layer}"] = (1, 1, res, res)
    if w_avg:
        t["w_avg"] = (style,)
    return t


def discriminator_table(size: int, ch: dict[int, int], img_channels: int = 3) -> dict[str, tuple]:
    t: dict[str, tuple] = {"convs.0.0.conv.weight_orig": (ch[size], img_channels, 1, 1),
                           "convs.0.1.bias": (ch[size],)}
    cin, j = ch[size], 1
    for i in range(int(math.log2(size)), 2, -1):
        cout = ch[2 ** (i - 1)]
        p = f"convs.{j}"
        t[f"{p}.conv1.0.conv.weight_orig"], t[f"{p}.conv1.1.bias"] = (cin, cin, 3, 3), (cin,)
        t[f"{p}.conv2.0.kernel"] = (4, 4)
        t[f"{p}.conv2.1.conv.weight_orig"], t[f"{p}.conv2.2.bias"] = (cout, cin, 3, 3), (cout,)
        t[f"{p}.skip.0.kernel"], t[f"{p}.skip.1.conv.weight_orig"] = (4, 4), (cout, cin, 1, 1)
        cin, j = cout, j + 1
    t["final_conv.0.conv.weight_orig"], t["final_conv.1.bias"] = (ch[4], cin + 1, 3, 3), (ch[4],)
    t["final_linear.0.linear.weight_orig"], t["final_linear.0.bias"] = (ch[4], ch[4] * 16), (ch[4],)
    t["final_linear.1.linear.weight_orig"], t["final_linear.1.bias"] = (1, ch[4]), (1,)
    return t


# MMGeneration's name → rosinality's, in order (the generator's; the discriminator's EqualConv2d/EqualLinear
# wrap their weight one level deeper: ``convs.0.0.conv.weight_orig`` is rosinality's ``convs.0.0.weight``).
GENERATOR_RENAMES = [(r"^style_mapping\.", "style."), (r"\.linear\.weight_orig$", ".weight"),
                     (r"\.style_modulation\.", ".modulation."), (r"\.weight_orig$", ".weight"),
                     (r"\.noise_injector\.", ".noise."), (r"^constant_input\.", "input."),
                     (r"^injected_noise_", "noises.noise_"), (r"^w_avg$", "latent_avg")]
DISCRIMINATOR_RENAMES = [(r"\.(conv|linear)\.weight_orig$", ".weight")]


def renamed(name: str, renames: list[tuple[str, str]]) -> str:
    for pattern, replacement in renames:
        name = re.sub(pattern, replacement, name)
    return name


def as_rosinality(sd: dict, renames: list[tuple[str, str]]) -> dict:
    """An MMGeneration state dict under rosinality's names (the same tensors)."""
    return {renamed(k, renames): v for k, v in sd.items()}


def random_state(table: dict[str, tuple], seed: int) -> dict[str, torch.Tensor]:
    """rosinality_writer.random_state's values, each entry taking those of its rosinality counterpart."""
    return rosinality.random_state(table, seed, lambda name: renamed(name, GENERATOR_RENAMES))


def small_generator(seed: int = 0, size: int = 32, style: int = 24, n_mlp: int = 3, **kwargs: Any) -> dict:
    return random_state(generator_table(size, style, n_mlp, SMALL_CHANNELS, **kwargs), seed)


def small_discriminator(seed: int = 1, size: int = 32) -> dict:
    return random_state(discriminator_table(size, SMALL_CHANNELS), seed)


def checkpoint(g_ema: dict | None = None, g: dict | None = None, d: dict | None = None, meta: Any = None,
               mmagic: bool = False, extra: dict | None = None) -> dict[str, Any]:
    """What MMGeneration's save_checkpoint writes: ``{'meta', 'state_dict', 'optimizer'}``; mmagic's EMA
    wrapper puts the EMA generator under ``generator_ema.module.`` with a ``generator_ema.steps`` counter."""
    state: dict[str, Any] = {}
    ema_prefix = "generator_ema.module." if mmagic else "generator_ema."
    for prefix, part in ((ema_prefix, g_ema), ("generator.", g), ("discriminator.", d)):
        state.update({prefix + k: v for k, v in (part or {}).items()})
    if mmagic and g_ema is not None:
        state["generator_ema.steps"] = torch.tensor([1234])
    ckpt: dict[str, Any] = {"state_dict": state, "optimizer": {"generator": {"state": {}, "param_groups": []}}}
    if meta is not None:
        ckpt["meta"] = meta
    ckpt.update(extra or {})
    return ckpt


def save(path: Path, value: Any) -> Path:
    torch.save(value, path)
    return path


# --------------------------------------------------------------------------------------------------
# MMGeneration's forward pass, float64


def pixel_norm(x):
    """MMGeneration's PixelNorm: ``x / (rms(x) + 1e-6)`` over the features."""
    return x / (x.norm(dim=1, keepdim=True) / math.sqrt(x.shape[1]) + 1e-6)


def ref_mapping(sd, z, label=None):
    """z (and label) → w, as StyleGANv2Generator.style_mapping (with mmagic's label embedding: its PixelNorm
    at index 0 gives way to the first layer, which takes [pixel_norm(z), pixel_norm(embed(label))])."""
    x = pixel_norm(z.double())
    if "embed.linear.weight_orig" in sd:
        e = equal_linear(label.double(), sd["embed.linear.weight_orig"].double(), sd["embed.bias"].double())
        x = torch.cat([x, pixel_norm(e)], 1)
    return rosinality.ref_style_mlp(as_rosinality(sd, GENERATOR_RENAMES), x)


def ref_generator(sd, z, label=None, psi=1.0, w_avg=None, bgr2rgb=False):
    """StyleGANv2Generator(z, label, truncation=psi, truncation_latent=w_avg, randomize_noise=False)."""
    w = rosinality.truncated(ref_mapping(sd, z, label), psi, w_avg)
    img = rosinality.ref_synthesis(as_rosinality(sd, GENERATOR_RENAMES), w)
    return img.flip(1) if bgr2rgb else img


def ref_discriminator(sd, img):
    """StyleGAN2Discriminator(img)."""
    return rosinality.ref_discriminator(as_rosinality(sd, DISCRIMINATOR_RENAMES), img)
