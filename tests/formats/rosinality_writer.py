"""rosinality/stylegan2-pytorch checkpoints, written by the tests, and rosinality's forward pass in float64.

The tables give every state-dict entry of rosinality's ``Generator(size, style_dim, n_mlp, channel_multiplier)``
and ``Discriminator(size, channel_multiplier)`` (from its model.py). ``ref_generator`` / ``ref_discriminator``
redo its arithmetic in float64 from the same file: PixelNorm as ``x · rsqrt(mean(x²) + 1e-8)``; EqualLinear
``x @ (W·lr/sqrt(in))ᵀ`` then ``lrelu(· + b·lr)·√2``; ModulatedConv2d (weight / sqrt(in·k·k) · style,
demodulated with eps 1e-8, transposed conv with stride 2 then Blur(pad (1, 1), kernel ×4) when upsampling);
NoiseInjection ``x + weight·noise``; FusedLeakyReLU; ToRGB plus the skip upsampled by upfirdn2d(up 2,
pad (2, 1), kernel ×4); and the Discriminator's ConvLayer, ResBlock and minibatch std (group 4).

MMGeneration's StyleGAN2 descends from this code: tests/formats/mmgen_writer.py renames its keys to these
and calls this reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2)
TAPS = torch.tensor([1.0, 3.0, 3.0, 1.0])


# --------------------------------------------------------------------------------------------------
# rosinality's names and shapes (model.py), and random checkpoints in that layout


def blur_kernel(gain: float = 1.0) -> torch.Tensor:
    """The [1, 3, 3, 1]² blur as a (4, 4) float32 kernel summing to ``gain`` (×4 where it upsamples)."""
    k = TAPS[None, :] * TAPS[:, None]
    return k / k.sum() * gain


def rosinality_channels(size: int, multiplier: int) -> dict[int, int]:
    """rosinality's channel table up to ``size``: 512 to 32², then halving, ×multiplier from 64² on."""
    table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
    return {r: c * (multiplier if r >= 64 else 1) for r, c in table.items() if r <= size}


def generator_table(size: int, style_dim: int, n_mlp: int, ch: dict[int, int]) -> dict[str, tuple]:
    """Every state-dict entry of rosinality's Generator: name → shape."""
    t: dict[str, tuple] = {}
    for i in range(1, n_mlp + 1):
        t[f"style.{i}.weight"], t[f"style.{i}.bias"] = (style_dim, style_dim), (style_dim,)
    t["input.input"] = (1, ch[4], 4, 4)

    def styled(name, cin, cout, upsample):
        t[f"{name}.conv.weight"] = (1, cout, cin, 3, 3)
        t[f"{name}.conv.modulation.weight"], t[f"{name}.conv.modulation.bias"] = (cin, style_dim), (cin,)
        if upsample:
            t[f"{name}.conv.blur.kernel"] = (4, 4)
        t[f"{name}.noise.weight"], t[f"{name}.activate.bias"] = (1,), (cout,)

    def to_rgb(name, cin, upsample):
        if upsample:
            t[f"{name}.upsample.kernel"] = (4, 4)
        t[f"{name}.bias"] = (1, 3, 1, 1)
        t[f"{name}.conv.weight"] = (1, 3, cin, 1, 1)
        t[f"{name}.conv.modulation.weight"], t[f"{name}.conv.modulation.bias"] = (cin, style_dim), (cin,)

    styled("conv1", ch[4], ch[4], False)
    to_rgb("to_rgb1", ch[4], False)
    log_size = int(math.log2(size))
    for layer in range((log_size - 2) * 2 + 1):
        res = 2 ** ((layer + 5) // 2)
        t[f"noises.noise_{layer}"] = (1, 1, res, res)
    cin = ch[4]
    for k, i in enumerate(range(3, log_size + 1)):
        cout = ch[2**i]
        styled(f"convs.{2 * k}", cin, cout, True)
        styled(f"convs.{2 * k + 1}", cout, cout, False)
        to_rgb(f"to_rgbs.{k}", cout, True)
        cin = cout
    return t


def discriminator_table(size: int, ch: dict[int, int]) -> dict[str, tuple]:
    """Every state-dict entry of rosinality's Discriminator: name → shape."""
    t: dict[str, tuple] = {"convs.0.0.weight": (ch[size], 3, 1, 1), "convs.0.1.bias": (ch[size],)}
    cin = ch[size]
    for j, i in enumerate(range(int(math.log2(size)), 2, -1), start=1):
        cout = ch[2 ** (i - 1)]
        t[f"convs.{j}.conv1.0.weight"], t[f"convs.{j}.conv1.1.bias"] = (cin, cin, 3, 3), (cin,)
        t[f"convs.{j}.conv2.0.kernel"] = (4, 4)
        t[f"convs.{j}.conv2.1.weight"], t[f"convs.{j}.conv2.2.bias"] = (cout, cin, 3, 3), (cout,)
        t[f"convs.{j}.skip.0.kernel"] = (4, 4)
        t[f"convs.{j}.skip.1.weight"] = (cout, cin, 1, 1)
        cin = cout
    t["final_conv.0.weight"], t["final_conv.1.bias"] = (ch[4], cin + 1, 3, 3), (ch[4],)
    t["final_linear.0.weight"], t["final_linear.0.bias"] = (ch[4], ch[4] * 16), (ch[4],)
    t["final_linear.1.weight"], t["final_linear.1.bias"] = (1, ch[4]), (1,)
    return t


def random_state(table: dict[str, tuple], seed: int,
                 rosinality_name: Callable[[str], str] = lambda name: name) -> dict[str, torch.Tensor]:
    """Values like a trained network's: unit-variance weights (×100 in the mapping, whose lr_mul is 0.01),
    modulation biases near 1, other biases, noise strengths and a latent_avg off zero, the fixed blur kernels.

    ``rosinality_name`` maps a derived layout's names to rosinality's, so that its entries get the same kinds
    of values (drawn in the table's order)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in table.items():
        kind = rosinality_name(name)
        if kind.endswith("kernel"):
            state[name] = blur_kernel(4.0 if ("upsample" in kind or "blur" in kind) else 1.0)
        elif kind.startswith("style.") and kind.endswith("weight"):
            state[name] = torch.randn(shape, generator=g) * 100
        elif kind.endswith("modulation.bias"):
            state[name] = 1 + 0.2 * torch.randn(shape, generator=g)
        elif kind.endswith(("bias", "noise.weight")) or kind == "latent_avg":
            state[name] = 0.2 * torch.randn(shape, generator=g)
        else:
            state[name] = torch.randn(shape, generator=g)
    return state


SMALL_CHANNELS = {4: 32, 8: 32, 16: 16, 32: 8}


def small_generator_state(seed=0, size=32, style_dim=24, n_mlp=3):
    """A rosinality-layout Generator with a small hand-edited channel table (the loader reads any table
    that min(base / res, max) can express)."""
    return random_state(generator_table(size, style_dim, n_mlp, SMALL_CHANNELS), seed)


def small_discriminator_state(seed=1, size=32):
    return random_state(discriminator_table(size, SMALL_CHANNELS), seed)


# --------------------------------------------------------------------------------------------------
# An independent float64 rosinality forward pass, from its model.py


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
    """FusedLeakyReLU: a per-channel bias, leaky ReLU with slope 0.2, gain √2."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, 0.2) * SQRT2


def equal_linear(x, weight, bias, lr=1.0, activate=False):
    """EqualLinear: ``x @ (W·lr/sqrt(in))ᵀ + b·lr``, then FusedLeakyReLU where ``activate``."""
    y = x @ (weight * lr / math.sqrt(weight.shape[1])).T
    return lrelu(y, bias * lr) if activate else y + bias * lr


def pixel_norm(x):
    """rosinality's PixelNorm: ``x · rsqrt(mean(x²) + 1e-8)`` over the features."""
    return x * torch.rsqrt((x ** 2).mean(1, keepdim=True) + 1e-8)


def ref_style_mlp(sd, x):
    """The mapping's EqualLinear layers (lr_mul 0.01) over ``style.{i}``, in index order, on normalized x."""
    layers = sorted(int(k.split(".")[1]) for k in sd if k.startswith("style.") and k.endswith(".weight"))
    for i in layers:
        x = equal_linear(x, sd[f"style.{i}.weight"].double(), sd[f"style.{i}.bias"].double(), 0.01, True)
    return x


def ref_mapping(sd, z):
    """z → w, as rosinality's Generator.style (PixelNorm, then the n_mlp layers)."""
    return ref_style_mlp(sd, pixel_norm(z.double()))


def truncated(w, psi=1.0, latent_avg=None):
    """``latent_avg + psi · (w - latent_avg)`` on every layer (w itself at psi = 1)."""
    return w if psi >= 1 else latent_avg.double() + psi * (w - latent_avg.double())


def ref_synthesis(sd, w):
    """w [N, style_dim] → image [N, 3, size, size], as rosinality's Generator with randomize_noise=False."""
    sd = {k: v.double() for k, v in sd.items()}

    def modconv(x, name, demodulate=True, upsample=False):
        weight = sd[f"{name}.weight"][0]
        style = equal_linear(w, sd[f"{name}.modulation.weight"], sd[f"{name}.modulation.bias"])
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
        x = x + sd[f"{name}.noise.weight"] * sd[noise]
        return lrelu(x, sd[f"{name}.activate.bias"])

    def to_rgb(x, name, skip=None):
        y = modconv(x, f"{name}.conv", demodulate=False) + sd[f"{name}.bias"]
        return y if skip is None else y + upfirdn2d(skip, blur_kernel(4.0), up=2, pad=(2, 1))

    x = sd["input.input"].repeat(w.shape[0], 1, 1, 1)
    x = styled(x, "conv1", "noises.noise_0")
    img = to_rgb(x, "to_rgb1")
    k = 0
    while f"to_rgbs.{k}.bias" in sd:
        x = styled(x, f"convs.{2 * k}", f"noises.noise_{2 * k + 1}", upsample=True)
        x = styled(x, f"convs.{2 * k + 1}", f"noises.noise_{2 * k + 2}")
        img = to_rgb(x, f"to_rgbs.{k}", img)
        k += 1
    return img


def ref_generator(sd, z, psi=1.0, latent_avg=None):
    """rosinality Generator([z], truncation=psi, truncation_latent=latent_avg, randomize_noise=False)."""
    return ref_synthesis(sd, truncated(ref_mapping(sd, z), psi, latent_avg))


def ref_discriminator(sd, img):
    """rosinality Discriminator(img): img [N, 3, size, size] → logits [N, 1]."""
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

    x = conv_layer(img.double(), sd["convs.0.0.weight"], sd["convs.0.1.bias"])
    j = 1
    while f"convs.{j}.conv1.0.weight" in sd:
        p = f"convs.{j}"
        out = conv_layer(x, sd[f"{p}.conv1.0.weight"], sd[f"{p}.conv1.1.bias"])
        out = conv_layer(out, sd[f"{p}.conv2.1.weight"], sd[f"{p}.conv2.2.bias"], down=True)
        skip = conv_layer(x, sd[f"{p}.skip.1.weight"], down=True, activate=False)
        x = (out + skip) / SQRT2
        j += 1
    n, c, h, w = x.shape
    group = min(n, 4)
    std = x.view(group, -1, 1, c, h, w).var(0, unbiased=False).add(1e-8).sqrt().mean([2, 3, 4], keepdim=True)
    x = torch.cat([x, std.squeeze(2).repeat(group, 1, h, w)], 1)
    x = conv_layer(x, sd["final_conv.0.weight"], sd["final_conv.1.bias"]).reshape(n, -1)
    x = equal_linear(x, sd["final_linear.0.weight"], sd["final_linear.0.bias"], activate=True)
    return equal_linear(x, sd["final_linear.1.weight"], sd["final_linear.1.bias"])


def rel_l2(ours: torch.Tensor, reference: torch.Tensor) -> float:
    """‖ours − reference‖ / ‖reference‖, in float64."""
    return float((ours.double() - reference).norm() / reference.norm())
