"""MMGeneration / mmagic StyleGAN2 checkpoints, written by the tests, and MMGeneration's forward pass in float64.

The tables give every state-dict entry of MMGeneration's ``StyleGANv2Generator(out_size, style_channels,
num_mlps, channel_multiplier)`` and ``StyleGAN2Discriminator(in_size, channel_multiplier)`` (from its
generator_discriminator_v2.py / styleganv2_modules.py: equalized-lr weights stored as ``weight_orig``,
``style_modulation.linear``, ``noise_injector``, ``injected_noise_{i}`` buffers, blur kernels as buffers),
and mmagic's conditional variant (``embed``, mapping without its PixelNorm at index 0, ``w_avg``).

``ref_generator`` / ``ref_discriminator`` redo its arithmetic in float64 from those facts: PixelNorm as
``x / (rms(x) + 1e-6)``; EqualLinearActModule ``x @ (W·lr/sqrt(in))ᵀ`` then ``lrelu(· + b·lr)·√2``;
ModulatedConv2d (weight / sqrt(in·k·k) · style, demodulated with eps 1e-8, grouped transposed conv with
stride 2 then Blur(pad (1, 1), kernel ×4) when upsampling); NoiseInjection ``x + weight·noise``;
ModulatedToRGB plus the skip upsampled by upfirdn2d(up 2, pad (2, 1), kernel ×4); and the final
``torch.flip`` of mmagic's ``bgr2rgb``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2)
TAPS = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)


def blur_kernel(gain: float = 1.0) -> torch.Tensor:
    k = TAPS[None, :] * TAPS[:, None]
    return (k / k.sum() * gain).float()


def mmgen_channels(size: int, multiplier: int = 2) -> dict[int, int]:
    table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
    return {r: c * (multiplier if r >= 64 else 1) for r, c in table.items() if r <= size}


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


def random_state(table: dict[str, tuple], seed: int) -> dict[str, torch.Tensor]:
    """Values like a trained network's: unit-variance weights (×100 in the mapping, whose lr_mul is 0.01),
    modulation biases near 1, other biases and noise strengths off zero, the fixed blur kernels."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in table.items():
        if name.endswith("kernel"):
            state[name] = blur_kernel(4.0 if ("upsample" in name or "blur" in name) else 1.0)
        elif name.startswith("style_mapping.") and name.endswith("weight_orig"):
            state[name] = torch.randn(shape, generator=g) * 100
        elif name.endswith("style_modulation.bias"):
            state[name] = 1 + 0.2 * torch.randn(shape, generator=g)
        elif name.endswith("bias") or name.endswith("noise_injector.weight") or name == "w_avg":
            state[name] = 0.2 * torch.randn(shape, generator=g)
        else:
            state[name] = torch.randn(shape, generator=g)
    return state


SMALL_CH = {4: 32, 8: 32, 16: 16, 32: 8}


def small_generator(seed: int = 0, size: int = 32, style: int = 24, n_mlp: int = 3, **kwargs: Any) -> dict:
    return random_state(generator_table(size, style, n_mlp, SMALL_CH, **kwargs), seed)


def small_discriminator(seed: int = 1, size: int = 32) -> dict:
    return random_state(discriminator_table(size, SMALL_CH), seed)


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


def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
    """Upsample by zero insertion, pad, convolve with ``kernel`` (flipped: a true convolution), downsample."""
    n, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(n, c, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    k = kernel.flip([0, 1]).to(x)[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, k, groups=c)[:, :, ::down, ::down]


def lrelu(x, bias=None):
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, 0.2) * SQRT2


def pixel_norm(x):
    return x / (x.norm(dim=1, keepdim=True) / math.sqrt(x.shape[1]) + 1e-6)


def equal_linear(x, weight, bias, lr=1.0, activate=False):
    y = x @ (weight * lr / math.sqrt(weight.shape[1])).T
    return lrelu(y, bias * lr) if activate else y + bias * lr


def ref_mapping(sd, z, label=None):
    """z (and label) → w, as StyleGANv2Generator.style_mapping (with mmagic's label embedding)."""
    if "embed.linear.weight_orig" in sd:
        e = equal_linear(label.double(), sd["embed.linear.weight_orig"], sd["embed.bias"])
        x, first = torch.cat([pixel_norm(z.double()), pixel_norm(e)], 1), 0
    else:
        x, first = pixel_norm(z.double()), 1
    i = first
    while f"style_mapping.{i}.bias" in sd:
        x = equal_linear(x, sd[f"style_mapping.{i}.linear.weight_orig"], sd[f"style_mapping.{i}.bias"], 0.01, True)
        i += 1
    return x


def ref_generator(sd, z, label=None, psi=1.0, w_avg=None, bgr2rgb=False):
    """StyleGANv2Generator(z, label, truncation=psi, truncation_latent=w_avg, randomize_noise=False)."""
    sd = {k: v.double() for k, v in sd.items()}
    w = ref_mapping(sd, z, label)
    if psi < 1:
        w = w_avg.double() + psi * (w - w_avg.double())

    def modconv(x, name, demodulate=True, upsample=False):
        weight = sd[f"{name}.weight_orig"][0]
        style = equal_linear(w, sd[f"{name}.style_modulation.linear.weight_orig"], sd[f"{name}.style_modulation.bias"])
        _, cin, k, _ = weight.shape
        outs = []
        for s, xi in zip(style, x):
            wi = weight / math.sqrt(cin * k * k) * s[None, :, None, None]
            if demodulate:
                wi = wi * torch.rsqrt((wi ** 2).sum([1, 2, 3]) + 1e-8)[:, None, None, None]
            if upsample:
                y = F.conv_transpose2d(xi[None], wi.transpose(0, 1), stride=2)
                outs.append(upfirdn2d(y, blur_kernel(4.0), pad=(1, 1)))
            else:
                outs.append(F.conv2d(xi[None], wi, padding=k // 2))
        return torch.cat(outs)

    def styled(x, name, noise, upsample=False):
        x = modconv(x, f"{name}.conv", upsample=upsample)
        x = x + sd[f"{name}.noise_injector.weight"] * sd[noise]
        return lrelu(x, sd[f"{name}.activate.bias"])

    def to_rgb(x, name, skip=None):
        y = modconv(x, f"{name}.conv", demodulate=False) + sd[f"{name}.bias"]
        return y if skip is None else y + upfirdn2d(skip, blur_kernel(4.0), up=2, pad=(2, 1))

    x = sd["constant_input.input"].repeat(z.shape[0], 1, 1, 1)
    x = styled(x, "conv1", "injected_noise_0")
    img = to_rgb(x, "to_rgb1")
    k = 0
    while f"to_rgbs.{k}.bias" in sd:
        x = styled(x, f"convs.{2 * k}", f"injected_noise_{2 * k + 1}", upsample=True)
        x = styled(x, f"convs.{2 * k + 1}", f"injected_noise_{2 * k + 2}")
        img = to_rgb(x, f"to_rgbs.{k}", img)
        k += 1
    return img.flip(1) if bgr2rgb else img


def ref_discriminator(sd, img):
    """StyleGAN2Discriminator(img)."""
    sd = {k: v.double() for k, v in sd.items()}

    def conv_layer(x, weight, bias=None, down=False, activate=True):
        k = weight.shape[-1]
        weight = weight / math.sqrt(weight.shape[1] * k * k)
        if down:
            p = 2 + (k - 1)
            x = upfirdn2d(x, blur_kernel(), pad=((p + 1) // 2, p // 2))
            x = F.conv2d(x, weight, stride=2)
        else:
            x = F.conv2d(x, weight, padding=k // 2)
        return lrelu(x, bias) if activate else x

    x = conv_layer(img.double(), sd["convs.0.0.conv.weight_orig"], sd["convs.0.1.bias"])
    j = 1
    while f"convs.{j}.conv1.0.conv.weight_orig" in sd:
        p = f"convs.{j}"
        out = conv_layer(x, sd[f"{p}.conv1.0.conv.weight_orig"], sd[f"{p}.conv1.1.bias"])
        out = conv_layer(out, sd[f"{p}.conv2.1.conv.weight_orig"], sd[f"{p}.conv2.2.bias"], down=True)
        skip = conv_layer(x, sd[f"{p}.skip.1.conv.weight_orig"], down=True, activate=False)
        x = (out + skip) / SQRT2
        j += 1
    n, c, h, w = x.shape
    group = min(n, 4)
    std = x.view(group, -1, 1, c, h, w).var(0, unbiased=False).add(1e-8).sqrt().mean([2, 3, 4], keepdim=True)
    x = torch.cat([x, std.squeeze(2).repeat(group, 1, h, w)], 1)
    x = conv_layer(x, sd["final_conv.0.conv.weight_orig"], sd["final_conv.1.bias"]).reshape(n, -1)
    x = equal_linear(x, sd["final_linear.0.linear.weight_orig"], sd["final_linear.0.bias"], activate=True)
    return equal_linear(x, sd["final_linear.1.linear.weight_orig"], sd["final_linear.1.bias"])


def rel_l2(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return float((ours.double() - reference).norm() / reference.norm())
