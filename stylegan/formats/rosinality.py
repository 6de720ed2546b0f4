"""rosinality/stylegan2-pytorch checkpoints (``.pt``) as our StyleGAN2 Generator and Discriminator.

Two layouts exist, both torch.save files (read by ``torch_files``, nothing in them is run):

- ``convert_weight.py`` output: ``{'g_ema': state dict, 'latent_avg': [style_dim]}``;
- ``train.py`` checkpoints: ``g``, ``d``, ``g_ema``, ``g_optim``, ``d_optim``, ``args`` (an
  ``argparse.Namespace``, read as data) and ``ada_aug_p``.

Its Generator is StyleGAN2's skip generator and its Discriminator the resnet one, with the same
arithmetic as ours; only names and a few shapes differ (a leading 1 on modulated conv weights, noise
strengths of shape [1], RGB biases [1, 3, 1, 1]). The settings are not stored: size, style_dim, n_mlp
and the channel table are read off the tensor shapes. Its ψ convention (``truncation_latent +
ψ·(w − truncation_latent)`` on every layer) is ours with ``truncation_cutoff=None`` and
``w_avg = latent_avg``. A file without ``latent_avg`` (train.py's) gets ``w_avg`` estimated the way
rosinality's ``generate.py`` does it: the mean w of 4096 latents (drawn from a fixed seed here, so that
every load gives the same one).
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
from torch import nn

from stylegan.errors import StyleGANError
from stylegan.formats.rebuild import build_with_tensors
from stylegan.formats.records import plain_data
from stylegan.formats.state_dicts import Pair, count_indexed, first_few, ours_from_theirs
from stylegan.formats.torch_files import ObjectRecord
from stylegan.limits import shorten
from stylegan.networks import network_shapes
from stylegan.ops import make_filter

FORMAT_NAME = "rosinality checkpoint"
# The two layouts, by their top-level keys (ada_aug_p is missing from older train.py checkpoints).
LAYOUTS = {"convert_weight.py": ("g_ema", "latent_avg"),
           "train.py": ("g", "d", "g_ema", "g_optim", "d_optim", "args", "ada_aug_p")}
LAYOUTS_TEXT = (f"rosinality's convert_weight.py output ({', '.join(LAYOUTS['convert_weight.py'])}) or train.py "
                f"checkpoint ({', '.join(LAYOUTS['train.py'])})")
BLUR_TAPS = (1, 3, 3, 1)  # rosinality's blur_kernel default; other kernels are refused
MAPPING_LR = 0.01  # rosinality's lr_mlp default (its train.py has no option for it)
W_AVG_SAMPLES, W_AVG_SEED = 4096, 0
_FIX = "pass a checkpoint written by rosinality/stylegan2-pytorch (convert_weight.py or train.py)"


# --------------------------------------------------------------------------------------------------
# The name tables: one entry per tensor, our name ↔ rosinality's, and how rosinality's shape wraps ours.


def _modulated(ours: str, theirs: str, noise: str | None) -> Iterator[Pair]:
    """A modulated conv (with noise and bias+lrelu when ``noise`` names its noise buffer) or a ToRGB."""
    conv = f"{theirs}.conv"
    yield Pair(f"{ours}.weight", f"{conv}.weight", "lead1")
    yield Pair(f"{ours}.affine.weight", f"{conv}.modulation.weight")
    yield Pair(f"{ours}.affine.bias", f"{conv}.modulation.bias")
    if noise:
        yield Pair(f"{ours}.noise_strength", f"{theirs}.noise.weight", "lead1")
        yield Pair(f"{ours}.bias", f"{theirs}.activate.bias")
        yield Pair(f"{ours}.noise_const", noise, "lead2")
    else:
        yield Pair(f"{ours}.bias", f"{theirs}.bias", "rgb_bias")


def generator_pairs(size: int, n_mlp: int) -> list[Pair]:
    """Every tensor of a rosinality Generator of ``size``² with ``n_mlp`` mapping layers, paired with ours."""
    pairs = [Pair(f"mapping.fc{i}.{p}", f"style.{i + 1}.{p}") for i in range(n_mlp) for p in ("weight", "bias")]
    pairs.append(Pair("synthesis.b4.const", "input.input", "lead1"))
    pairs += _modulated("synthesis.b4.conv1", "conv1", "noises.noise_0")
    pairs += _modulated("synthesis.b4.torgb", "to_rgb1", None)
    for k, res in enumerate(upper_resolutions(size)):
        block = f"synthesis.b{res}"
        pairs += _modulated(f"{block}.conv0", f"convs.{2 * k}", f"noises.noise_{2 * k + 1}")
        pairs += _modulated(f"{block}.conv1", f"convs.{2 * k + 1}", f"noises.noise_{2 * k + 2}")
        pairs += _modulated(f"{block}.torgb", f"to_rgbs.{k}", None)
    return pairs


def generator_kernels(size: int) -> dict[str, torch.Tensor]:
    """rosinality's fixed resampling buffers: the blur of each up-conv and each skip upsampling (×4 gain)."""
    kernel = make_filter(list(BLUR_TAPS)) * 4
    kernels = {}
    for k, _ in enumerate(upper_resolutions(size)):
        kernels[f"convs.{2 * k}.conv.blur.kernel"] = kernel
        kernels[f"to_rgbs.{k}.upsample.kernel"] = kernel
    return kernels


def discriminator_pairs(size: int) -> list[Pair]:
    """Every tensor of a rosinality Discriminator of ``size``², paired with ours (resnet architecture)."""
    pairs = [Pair(f"b{size}.fromrgb.weight", "convs.0.0.weight"), Pair(f"b{size}.fromrgb.bias", "convs.0.1.bias")]
    for j, res in enumerate(reversed(upper_resolutions(size)), start=1):
        block, theirs = f"b{res}", f"convs.{j}"
        pairs += [Pair(f"{block}.conv0.weight", f"{theirs}.conv1.0.weight"),
                  Pair(f"{block}.conv0.bias", f"{theirs}.conv1.1.bias"),
                  Pair(f"{block}.conv1.weight", f"{theirs}.conv2.1.weight"),
                  Pair(f"{block}.conv1.bias", f"{theirs}.conv2.2.bias"),
                  Pair(f"{block}.skip.weight", f"{theirs}.skip.1.weight")]
    pairs += [Pair("b4.conv.weight", "final_conv.0.weight"), Pair("b4.conv.bias", "final_conv.1.bias"),
              Pair("b4.fc.weight", "final_linear.0.weight"), Pair("b4.fc.bias", "final_linear.0.bias"),
              Pair("b4.out.weight", "final_linear.1.weight"), Pair("b4.out.bias", "final_linear.1.bias")]
    return pairs


def discriminator_kernels(size: int) -> dict[str, torch.Tensor]:
    """The blur before each downsampling conv and shortcut (no gain)."""
    kernel = make_filter(list(BLUR_TAPS))
    return {f"convs.{j}.{branch}.0.kernel": kernel
            for j in range(1, len(upper_resolutions(size)) + 1) for branch in ("conv2", "skip")}


def upper_resolutions(size: int) -> list[int]:
    """8, 16, …, size: the resolutions above the 4×4 start."""
    return [2**i for i in range(3, size.bit_length())]


def is_derived(name: str) -> bool:
    """Our buffers that the settings fix (resampling filters); rosinality stores its own kernels instead."""
    return name.endswith("resample_filter")


# --------------------------------------------------------------------------------------------------
# Settings read off the shapes


def channel_settings(widths: dict[int, int], what: str) -> tuple[int, int]:
    """(channel_base, channel_max) with ``min(channel_base // res, channel_max) == widths[res]`` everywhere.

    rosinality's table (512 up to 32², then 16384·m/res) always fits; a hand-edited one may not.
    """
    channel_max = max(widths.values())
    bases = {width * res for res, width in widths.items() if width < channel_max}
    base = bases.pop() if len(bases) == 1 else channel_max * max(widths)
    if bases or any(min(base // res, channel_max) != width for res, width in widths.items()):
        table = ", ".join(f"{res}: {width}" for res, width in sorted(widths.items()))
        raise StyleGANError(f"{what} has channel counts ({table}) that our StyleGAN2 cannot express: they must "
                            "be min(channel_base / resolution, channel_max)", _FIX)
    return base, channel_max


def _shape(state: dict[str, Any], key: str, ndim: int, what: str) -> tuple[int, ...]:
    value = state.get(key)
    if not isinstance(value, torch.Tensor) or value.ndim != ndim:
        found = "is missing" if value is None else (f"has shape {list(value.shape)}" if isinstance(value, torch.Tensor)
                                                    else f"is a {type(value).__name__}")
        raise StyleGANError(f"{what} is not a rosinality network: {key} {found} (expected a {ndim}-D tensor)", _FIX)
    return tuple(value.shape)


def generator_kwargs(state: dict[str, Any], what: str) -> dict[str, Any]:
    """Our Generator's kwargs for a rosinality Generator state dict (size, style_dim, n_mlp, channels)."""
    n_mlp = count_indexed(state, "style.{}.weight", start=1)  # style.0 is the PixelNorm, which has no tensors
    if n_mlp < 1:
        raise StyleGANError(f"{what} is not a rosinality Generator: it has no style.1.weight (mapping layer)", _FIX)
    style_dim = _shape(state, "style.1.weight", 2, what)[1]
    widths = {4: _shape(state, "input.input", 4, what)[1]}
    n_up = count_indexed(state, "to_rgbs.{}.conv.weight")
    if n_up > 12:
        raise StyleGANError(f"{what} has {n_up} upsampling blocks, more than any supported resolution", _FIX)
    size = 2 ** (n_up + 2)
    for k, res in enumerate(upper_resolutions(size)):
        widths[res] = _shape(state, f"convs.{2 * k}.conv.weight", 5, what)[1]
    base, channel_max = channel_settings(widths, what)
    return dict(z_dim=style_dim, c_dim=0, w_dim=style_dim, img_resolution=size, img_channels=3,
                mapping_kwargs=dict(num_layers=n_mlp, lr_multiplier=MAPPING_LR),
                synthesis_kwargs=dict(channel_base=base, channel_max=channel_max, architecture="skip"))


def discriminator_kwargs(state: dict[str, Any], what: str) -> dict[str, Any]:
    """Our Discriminator's kwargs for a rosinality Discriminator state dict (size and channels)."""
    widths = {}
    n_blocks = count_indexed(state, "convs.{}.conv1.0.weight", start=1)  # convs.0 is the fromrgb layer
    if n_blocks < 1 or n_blocks > 12:
        raise StyleGANError(f"{what} is not a rosinality Discriminator: it has {n_blocks} residual blocks", _FIX)
    size = 2 ** (n_blocks + 2)
    widths[size] = _shape(state, "convs.0.0.weight", 4, what)[0]
    for j, res in enumerate(reversed(upper_resolutions(size)), start=1):
        widths[res // 2] = _shape(state, f"convs.{j}.conv2.1.weight", 4, what)[0]
    base, channel_max = channel_settings(widths, what)
    return dict(c_dim=0, img_resolution=size, img_channels=3, architecture="resnet", channel_base=base,
                channel_max=channel_max)


# --------------------------------------------------------------------------------------------------
# State dicts → our modules


def _tensors(state: dict[str, Any], pairs: list[Pair], kernels: dict[str, torch.Tensor],
             expected: dict[str, Any], what: str, network: str) -> dict[str, torch.Tensor]:
    """Our tensors from rosinality's state dict, after checking its names, shapes and fixed kernels."""
    return ours_from_theirs(state, pairs, kernels, expected, what, network, layout="rosinality", fix=_FIX)


def _state_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(type(k) is str for k in value):
        raise StyleGANError(f"{what} is not a state dict (it is a {type(value).__name__})", _FIX)
    return value


def generator_from_state(value: Any, latent_avg: Any, what: str) -> tuple[nn.Module, bool]:
    """(our Generator, whether w_avg was estimated) for a rosinality Generator state dict."""
    state = _state_dict(value, what)
    kwargs = generator_kwargs(state, what)
    size, n_mlp = kwargs["img_resolution"], kwargs["mapping_kwargs"]["num_layers"]
    expected, _ = network_shapes("Generator", kwargs, what)  # checks the settings against the limits first
    tensors = _tensors(state, generator_pairs(size, n_mlp), generator_kernels(size), expected, what, "Generator")
    estimated = latent_avg is None
    if not estimated:
        if not isinstance(latent_avg, torch.Tensor) or latent_avg.numel() != kwargs["w_dim"] \
                or not latent_avg.is_floating_point():
            found = list(latent_avg.shape) if isinstance(latent_avg, torch.Tensor) else type(latent_avg).__name__
            raise StyleGANError(f"latent_avg in {what.split(' in ', 1)[-1]} is {found}, expected "
                                f"[{kwargs['w_dim']}] (the mean w)", _FIX)
        tensors["mapping.w_avg"] = latent_avg.float().reshape(-1)
    G = build_with_tensors("Generator", kwargs, tensors, what, derived=lambda k: is_derived(k) or
                           (estimated and k == "mapping.w_avg"))
    if estimated:
        G.mapping.w_avg.copy_(estimate_w_avg(G))
    return G, estimated


def estimate_w_avg(G: nn.Module, samples: int = W_AVG_SAMPLES, seed: int = W_AVG_SEED) -> torch.Tensor:
    """The mean w of ``samples`` latents z ~ N(0, I) from a fixed seed: rosinality's ``mean_latent``."""
    z = torch.randn([samples, G.z_dim], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G.mapping(z, None)[:, 0].mean(0)


def discriminator_from_state(value: Any, what: str) -> nn.Module:
    state = _state_dict(value, what)
    kwargs = discriminator_kwargs(state, what)
    size = kwargs["img_resolution"]
    expected, _ = network_shapes("Discriminator", kwargs, what)
    tensors = _tensors(state, discriminator_pairs(size), discriminator_kernels(size), expected, what,
                       "Discriminator")
    return build_with_tensors("Discriminator", kwargs, tensors, what, derived=is_derived)


# --------------------------------------------------------------------------------------------------
# The checkpoint


def is_rosinality(obj: Any) -> bool:
    """Whether a torch checkpoint's top level is one of rosinality's layouts (a dict with g_ema)."""
    return isinstance(obj, dict) and "g_ema" in obj


def layout_of(obj: dict[str, Any]) -> str:
    return "train.py" if "args" in obj else "convert_weight.py"


def training_args(value: Any, source: str) -> dict[str, Any] | None:
    """train.py's ``args`` as plain data (it is an ObjectRecord of an argparse.Namespace, or absent)."""
    if value is None:
        return None
    if not isinstance(value, ObjectRecord):
        raise StyleGANError(f"args in {source} is a {type(value).__name__}, not train.py's argparse.Namespace", _FIX)
    return plain_data(value.state, f"args in {source}")


def networks_from_checkpoint(obj: dict[str, Any], source: str) -> dict[str, Any]:
    """``load_network``'s dict for a rosinality checkpoint: G_ema (and G, D where present), plus
    ``training_args`` and ``ada_aug_p`` from train.py checkpoints."""
    args = training_args(obj.get("args"), source)
    arch = (args or {}).get("arch", "stylegan2")
    if arch != "stylegan2":  # train.py --arch swagan: a wavelet generator with other layers
        raise StyleGANError(f"{source} was trained with --arch {shorten(str(arch), 40)}; only rosinality's "
                            "stylegan2 architecture is supported", _FIX)
    latent_avg = obj.get("latent_avg")
    net: dict[str, Any] = {}
    G_ema, estimated = generator_from_state(obj["g_ema"], latent_avg, f"g_ema in {source}")
    net["G_ema"] = G_ema
    if obj.get("g") is not None:
        net["G"] = generator_from_state(obj["g"], latent_avg, f"g in {source}")[0]
    if obj.get("d") is not None:
        net["D"] = discriminator_from_state(obj["d"], f"d in {source}")
    if args is not None:
        net["training_args"] = args
    p = obj.get("ada_aug_p")
    if isinstance(p, torch.Tensor) and p.numel() == 1:
        p = float(p)
    if isinstance(p, (int, float)) and not isinstance(p, bool):
        net["ada_aug_p"] = float(p)
    note = f"; no latent_avg: w_avg is the mean of {W_AVG_SAMPLES} mapped latents" if estimated else ""
    net["format"] = f"{FORMAT_NAME} ({layout_of(obj)}{note})"
    return net


def describe_keys(obj: Any) -> str:
    """What a checkpoint's top level holds, for an error line."""
    if not isinstance(obj, dict):
        return f"a {type(obj).__name__}"
    keys = [shorten(str(k), 40) for k in obj]
    return "keys " + (first_few(keys, 8) if keys else "none")


def neither_layout(source: str, obj: Any, also: str | None = None, found: str = "",
                   container: str = "ZIP archive") -> StyleGANError:
    """The refusal of a checkpoint in no known layout; ``also`` names the other layouts the caller tried,
    ``found`` adds what else it saw (e.g. "; its state_dict holds …"), ``container`` the torch.save format."""
    expected = LAYOUTS_TEXT + (f"; or {also}" if also else "")
    return StyleGANError(f"{source} is a torch.save checkpoint ({container}) in no layout we know: it holds "
                         f"{describe_keys(obj)}{found}; expected {expected}",
                         "pass a rosinality/stylegan2-pytorch or MMGeneration/mmagic StyleGAN2 checkpoint"
                         if also else _FIX)


__all__ = ["FORMAT_NAME", "LAYOUTS", "Pair", "generator_pairs", "discriminator_pairs", "generator_kernels",
           "discriminator_kernels", "networks_from_checkpoint", "is_rosinality", "neither_layout"]
