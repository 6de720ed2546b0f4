"""MMGeneration (0.x) and mmagic (1.x) StyleGAN2 checkpoints (``.pth``) as our Generator and Discriminator.

Both are torch.save files (read by ``torch_files``, nothing in them is run) holding ``state_dict``, one flat
dict for the whole GAN whose keys start with ``generator_ema.`` (mmagic trained: ``generator_ema.module.``
plus its ``generator_ema.steps`` counter), ``generator.`` and ``discriminator.``, and usually ``meta`` (plain
data: versions, iteration, the training config as text) and optimizer states, which we leave unread.

MMGeneration's StyleGAN2 descends from rosinality's and has the same arithmetic and shapes; only names
differ: equalized-lr weights are stored as ``*.weight_orig`` (the runtime weight is ``weight_orig ·
gain · lr_mul / sqrt(fan_in)``, gain 1: exactly how our layers read their weights), the style affine is
``style_modulation.linear``, noise strengths ``noise_injector.weight``, the const noise the buffers
``injected_noise_{i}``. So the name tables are rosinality's (imported from there) with those renames.
mmagic adds a conditional generator (``embed``: the label embedding, then a mapping with no PixelNorm
layer at index 0) and an optional ``w_avg``. Files without ``w_avg`` get the mean w of 4096 mapped
latents, as MMGeneration's own truncation computes it. One difference changes pixels by about 1e-6
relative and is not reproduced: MMGeneration normalises z as ``z / (rms(z) + 1e-6)`` where we use
``z · rsqrt(mean(z²) + 1e-8)``.

Colour order. The weights do not record it. MMGeneration and mmagic load training images with OpenCV
(BGR) and train on them as such; the NVIDIA weights they publish were converted to that convention (their
demos flip outputs ``[2, 1, 0]`` before saving). So a generator of this layout outputs BGR, and we swap its
ToRGB output channels to produce RGB. Their discriminators take what they were trained on: BGR for a
checkpoint trained by them (its ``meta`` holds the training config) unless that config set
``input_bgr2rgb=True``, and RGB for the converted NVIDIA ones (which carry no training config); a BGR one
gets its FromRGB input channels swapped, so that our D takes RGB like our G makes. ``output_order``
('bgr' or 'rgb') overrides the generator's rule for a checkpoint known to differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stylegan.errors import StyleGANError, setting
from stylegan.formats import rosinality
from stylegan.formats.rebuild import build_with_tensors
from stylegan.formats.records import plain_data
from stylegan.formats.state_dicts import Pair, count_indexed, first_few, ours_from_theirs
from stylegan.formats.torch_files import ObjectRecord, read_torch_file
from stylegan.limits import quote, shorten
from stylegan.networks import network_shapes

FORMAT_NAME = "MMGeneration/mmagic checkpoint"
# Where each network's keys start in ``state_dict``, most specific first (mmagic's EMA wraps a module).
PREFIXES = {"G_ema": ("generator_ema.module.", "generator_ema."), "G": ("generator.",), "D": ("discriminator.",)}
# Keys under a prefix that hold no weights of ours: mmagic's EMA step count, MMGeneration's ADA pipeline.
IGNORED = ("steps", "ada_aug.")
LAYOUT_TEXT = "MMGeneration/mmagic's (state_dict keys generator_ema., generator., discriminator.)"
OUTPUT_ORDERS = ("bgr", "rgb")
SWAP = [2, 1, 0]
_FIX = "pass a StyleGAN2 checkpoint saved by MMGeneration 0.x or mmagic 1.x"
_META_FIELDS = ("mmcv_version", "mmengine_version", "mmgen_version", "time", "epoch", "iter", "seed", "exp_name",
                "experiment_name")


# --------------------------------------------------------------------------------------------------
# Names: rosinality's tables, renamed


def mmgen_name(rosinality_name: str) -> str:
    """MMGeneration's name for a rosinality state-dict entry (generator or discriminator)."""
    name = rosinality_name
    if name == "input.input":
        return "constant_input.input"
    if name.startswith("noises.noise_"):
        return "injected_noise_" + name[len("noises.noise_"):]
    for old, new in ((".conv.modulation.weight", ".conv.style_modulation.linear.weight_orig"),
                     (".conv.modulation.bias", ".conv.style_modulation.bias"),
                     (".noise.weight", ".noise_injector.weight")):
        if name.endswith(old):
            return name[: -len(old)] + new
    if name.endswith(".weight"):  # an equalized-lr conv or linear layer: its weight is stored as weight_orig
        stem = name[: -len(".weight")]
        if stem.startswith("final_linear."):
            return stem + ".linear.weight_orig"
        if stem.endswith(".conv"):  # the generator's modulated convs (ModulatedConv2d holds it directly)
            return stem + ".weight_orig"
        return stem + ".conv.weight_orig"  # the discriminator's EqualizedLRConvModule wraps an nn.Conv2d
    return name


def renamed(pairs: list[Pair]) -> list[Pair]:
    return [Pair(p.ours, mmgen_name(p.theirs), p.wrap) for p in pairs]


def mapping_pairs(n_mlp: int, conditional: bool) -> list[Pair]:
    """The mapping layers (index 0 is the PixelNorm unless the generator is conditional) and the embedding."""
    first = 0 if conditional else 1
    pairs = [Pair(f"mapping.fc{i}.weight", f"style_mapping.{i + first}.linear.weight_orig") for i in range(n_mlp)]
    pairs += [Pair(f"mapping.fc{i}.bias", f"style_mapping.{i + first}.bias") for i in range(n_mlp)]
    if conditional:
        pairs += [Pair("mapping.embed.weight", "embed.linear.weight_orig"), Pair("mapping.embed.bias", "embed.bias")]
    return pairs


def generator_pairs(size: int, n_mlp: int, conditional: bool = False) -> list[Pair]:
    """Every tensor of an MMGeneration StyleGANv2Generator, paired with ours (w_avg not included)."""
    return mapping_pairs(n_mlp, conditional) + renamed(rosinality.generator_pairs(size, 0))


def discriminator_pairs(size: int) -> list[Pair]:
    return renamed(rosinality.discriminator_pairs(size))


# --------------------------------------------------------------------------------------------------
# Settings from shapes


def _shape(state: dict[str, Any], key: str, ndim: int, what: str) -> tuple[int, ...]:
    value = state.get(key)
    if not isinstance(value, torch.Tensor) or value.ndim != ndim:
        found = "is missing" if value is None else (f"has shape {list(value.shape)}" if isinstance(value, torch.Tensor)
                                                    else f"is a {type(value).__name__}")
        raise StyleGANError(f"{what} is not an MMGeneration StyleGAN2 network: {key} {found} "
                            f"(expected a {ndim}-D tensor)", _FIX)
    return tuple(value.shape)


def _channel_settings(widths: dict[int, int], what: str) -> tuple[int, int]:
    try:
        return rosinality.channel_settings(widths, what)
    except StyleGANError as e:  # the same rule; our own advice
        raise StyleGANError(e.what, _FIX) from None


def generator_kwargs(state: dict[str, Any], what: str) -> dict[str, Any]:
    """Our Generator's kwargs for an MMGeneration generator state dict (all read off the shapes)."""
    conditional = "embed.linear.weight_orig" in state
    first = 0 if conditional else 1
    n_mlp = count_indexed(state, "style_mapping.{}.linear.weight_orig", start=first)
    if n_mlp < 1:
        raise StyleGANError(f"{what} is not an MMGeneration StyleGAN2 generator: it has no "
                            f"style_mapping.{first}.linear.weight_orig (mapping layer)", _FIX)
    w_dim, fan_in = _shape(state, f"style_mapping.{first}.linear.weight_orig", 2, what)
    c_dim = embed = 0
    if conditional:
        embed, c_dim = _shape(state, "embed.linear.weight_orig", 2, what)
    z_dim = fan_in - embed
    if z_dim < 1:
        raise StyleGANError(f"{what}: its first mapping layer reads {fan_in} values, no more than its label "
                            f"embedding's {embed}", _FIX)
    widths = {4: _shape(state, "constant_input.input", 4, what)[1]}
    img_channels = _shape(state, "to_rgb1.conv.weight_orig", 5, what)[1]
    n_up = count_indexed(state, "to_rgbs.{}.conv.weight_orig")
    if n_up > 12:
        raise StyleGANError(f"{what} has {n_up} upsampling blocks, more than any supported resolution", _FIX)
    size = 2 ** (n_up + 2)
    for k, res in enumerate(rosinality.upper_resolutions(size)):
        widths[res] = _shape(state, f"convs.{2 * k}.conv.weight_orig", 5, what)[1]
    base, channel_max = _channel_settings(widths, what)
    mapping = dict(num_layers=n_mlp, lr_multiplier=rosinality.MAPPING_LR)
    if conditional:
        mapping["embed_features"] = embed
    return dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=size, img_channels=img_channels,
                mapping_kwargs=mapping,
                synthesis_kwargs=dict(channel_base=base, channel_max=channel_max, architecture="skip"))


def discriminator_kwargs(state: dict[str, Any], what: str) -> dict[str, Any]:
    n_blocks = count_indexed(state, "convs.{}.conv1.0.conv.weight_orig", start=1)
    if n_blocks < 1 or n_blocks > 12:
        raise StyleGANError(f"{what} is not an MMGeneration StyleGAN2 discriminator: it has {n_blocks} residual "
                            "blocks", _FIX)
    if "mapping.fc0.weight" in state or any(k.startswith("mapping.") for k in state):
        raise StyleGANError(f"{what} is a conditional (label-mapping) discriminator, which is not supported",
                            "load the generators alone: drop the discriminator. keys from the checkpoint")
    size = 2 ** (n_blocks + 2)
    img_channels = _shape(state, "convs.0.0.conv.weight_orig", 4, what)[1]
    widths = {size: _shape(state, "convs.0.0.conv.weight_orig", 4, what)[0]}
    for j, res in enumerate(reversed(rosinality.upper_resolutions(size)), start=1):
        widths[res // 2] = _shape(state, f"convs.{j}.conv2.1.conv.weight_orig", 4, what)[0]
    base, channel_max = _channel_settings(widths, what)
    return dict(c_dim=0, img_resolution=size, img_channels=img_channels, architecture="resnet", channel_base=base,
                channel_max=channel_max)


# --------------------------------------------------------------------------------------------------
# State dicts → our modules


def _tensors(state: dict[str, Any], pairs: list[Pair], kernels: dict[str, torch.Tensor],
             expected: dict[str, Any], what: str, network: str) -> dict[str, torch.Tensor]:
    """Our tensors from an MMGeneration state dict, after checking its names, shapes and fixed kernels."""
    return ours_from_theirs(state, pairs, kernels, expected, what, network, layout="MMGeneration", fix=_FIX)


def swap_torgb_outputs(tensors: dict[str, torch.Tensor]) -> None:
    """Reverse the output channels of every ToRGB layer: the image's channel order reverses (the skip sum
    and its upsampling act on each channel alone)."""
    for name in list(tensors):
        if name.endswith((".torgb.weight", ".torgb.bias")):  # not its affine: that reads w
            tensors[name] = tensors[name][SWAP].contiguous()


def swap_fromrgb_inputs(tensors: dict[str, torch.Tensor]) -> None:
    for name in list(tensors):
        if name.endswith(".fromrgb.weight"):
            tensors[name] = tensors[name][:, SWAP].contiguous()


def generator_from_state(state: dict[str, Any], what: str, swap: bool) -> tuple[nn.Module, bool]:
    """(our Generator, whether w_avg was estimated) for an MMGeneration generator state dict."""
    kwargs = generator_kwargs(state, what)
    size, n_mlp = kwargs["img_resolution"], kwargs["mapping_kwargs"]["num_layers"]
    expected, _ = network_shapes("Generator", kwargs, what)  # checks the settings against the limits first
    w_avg = state.get("w_avg")
    weights = {k: v for k, v in state.items() if k != "w_avg"}
    tensors = _tensors(weights, generator_pairs(size, n_mlp, kwargs["c_dim"] > 0),
                       rosinality.generator_kernels(size), expected, what, "generator")
    estimated = w_avg is None
    if not estimated:
        if not isinstance(w_avg, torch.Tensor) or not w_avg.is_floating_point() \
                or tuple(w_avg.shape) != (kwargs["w_dim"],):
            found = list(w_avg.shape) if isinstance(w_avg, torch.Tensor) else type(w_avg).__name__
            raise StyleGANError(f"{what}: w_avg is {found}, expected a float tensor [{kwargs['w_dim']}] (the mean w)",
                                _FIX)
        tensors["mapping.w_avg"] = w_avg.float()
    if swap:
        swap_torgb_outputs(tensors)
    G = build_with_tensors("Generator", kwargs, tensors, what, derived=lambda k: rosinality.is_derived(k) or
                           (estimated and k == "mapping.w_avg"))
    if estimated:
        if kwargs["c_dim"] > 0:
            raise StyleGANError(f"{what} is conditional but holds no w_avg", _FIX)
        G.mapping.w_avg.copy_(rosinality.estimate_w_avg(G))
    return G, estimated


def discriminator_from_state(state: dict[str, Any], what: str, swap: bool) -> nn.Module:
    kwargs = discriminator_kwargs(state, what)
    size = kwargs["img_resolution"]
    expected, _ = network_shapes("Discriminator", kwargs, what)
    tensors = _tensors(state, discriminator_pairs(size), rosinality.discriminator_kernels(size), expected, what,
                       "discriminator")
    if swap:
        swap_fromrgb_inputs(tensors)
    return build_with_tensors("Discriminator", kwargs, tensors, what, derived=rosinality.is_derived)


# --------------------------------------------------------------------------------------------------
# The checkpoint


def _state_dict(obj: Any) -> Any:
    return obj.get("state_dict") if isinstance(obj, dict) else None


def is_mmgeneration(obj: Any) -> bool:
    """Whether a torch checkpoint holds a ``state_dict`` with MMGeneration's generator keys."""
    state = _state_dict(obj)
    return isinstance(state, dict) and any(isinstance(k, str) and k.startswith(("generator_ema.", "generator."))
                                           for k in state)


def split_networks(state: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """``state_dict`` split into one state dict per network ('G_ema', 'G', 'D'), prefixes removed."""
    parts: dict[str, dict[str, Any]] = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise StyleGANError(f"state_dict in {source} has a key that is a {type(key).__name__}", _FIX)
        for net, prefixes in PREFIXES.items():
            prefix = next((p for p in prefixes if key.startswith(p)), None)
            if prefix is not None:
                rest = key[len(prefix):]
                if not (net == "G_ema" and rest == "steps") and not (net == "D" and rest.startswith("ada_aug.")):
                    parts.setdefault(net, {})[rest] = value
                break
    return parts


@dataclass(frozen=True)
class ColourOrder:
    """What the checkpoint's networks produce and take, and whether we swapped them to RGB."""

    generator: str  # 'BGR' or 'RGB' (as stored), or 'n/a' for other than 3 channels
    discriminator: str | None
    why: str

    def describe(self) -> str:
        gen = {"BGR": "generator outputs BGR, swapped to RGB", "RGB": "generator outputs RGB"}.get(
            self.generator, "not colour images")
        disc = {"BGR": "; discriminator takes BGR, swapped to RGB",
                "RGB": "; discriminator takes RGB"}.get(self.discriminator or "", "")
        return f"{gen}{disc} ({self.why})"


def read_meta(obj: dict[str, Any], source: str) -> dict[str, Any]:
    """The checkpoint's ``meta`` as plain data (strings, numbers, lists, dicts); anything else is refused."""
    meta = obj.get("meta")
    if meta is None:
        return {}
    what = f"meta in {source}"
    if not isinstance(meta, dict):
        raise StyleGANError(f"{what} is a {type(meta).__name__}, not a dict", _FIX)
    meta = plain_data(meta, what)
    stack = [meta]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif value is not None and type(value) not in (str, int, float, bool):
            kind = value.class_name if isinstance(value, ObjectRecord) else type(value).__name__
            raise StyleGANError(f"{what} holds a {kind}, where only plain data (text, numbers) belongs", _FIX)
    return meta


def training_config(meta: dict[str, Any]) -> str | None:
    """The training config text a checkpoint records (MMGeneration: ``config``, mmagic/mmengine: ``cfg``)."""
    text = meta.get("config", meta.get("cfg"))
    return text if isinstance(text, str) else None


def colour_order(meta: dict[str, Any], img_channels: int, has_d: bool, output_order: str | None) -> ColourOrder:
    """The rule in this module's docstring."""
    if output_order is not None and output_order not in OUTPUT_ORDERS:
        raise StyleGANError(f"{setting('output_order', '')} is {quote(str(output_order))}",
                            f"use one of {', '.join(OUTPUT_ORDERS)}, or None for MMGeneration's convention (bgr)")
    if img_channels != 3:
        return ColourOrder("n/a", None, f"{img_channels} channels")
    config = training_config(meta)
    generator = (output_order or "bgr").upper()
    why = "output_order given" if output_order else "MMGeneration's convention"
    disc = None
    if has_d:
        trained_bgr = config is not None and "input_bgr2rgb=True" not in config
        disc = "BGR" if trained_bgr else "RGB"
        why += "; D: " + ("trained by MMGeneration/mmagic" if config is not None else "no training config: converted")
    return ColourOrder(generator, disc, why)


def networks_from_checkpoint(obj: dict[str, Any], source: str, output_order: str | None = None) -> dict[str, Any]:
    """``load_network``'s dict for an MMGeneration/mmagic checkpoint: G_ema (the generator when the file has
    no EMA copy), G and D where present, ``colour_order`` and ``mmgen_meta`` (a few plain fields of
    ``meta``). ``output_order`` ('bgr'/'rgb') states the generator's colour order when it is known to
    differ from MMGeneration's convention (BGR)."""
    meta = read_meta(obj, source)
    state = _state_dict(obj)
    if not isinstance(state, dict):
        raise StyleGANError(f"state_dict in {source} is a {type(state).__name__}, not a dict", _FIX)
    parts = split_networks(state, source)
    if "G_ema" not in parts and "G" not in parts:
        raise neither_network(source, state)
    g_key = "G_ema" if "G_ema" in parts else "G"
    img_channels = _shape(parts[g_key], "to_rgb1.conv.weight_orig", 5, f"{g_key} in {source}")[1]
    order = colour_order(meta, img_channels, "D" in parts, output_order)
    net: dict[str, Any] = {}
    names = {"G_ema": "generator_ema", "G": "generator", "D": "discriminator"}
    estimated = False
    for key in ("G_ema", "G"):
        if key in parts:
            net[key], est = generator_from_state(parts[key], f"{names[key]} in {source}", order.generator == "BGR")
            estimated = estimated or est
    if "G_ema" not in net:
        net["G_ema"] = net["G"]
    if "D" in parts:
        net["D"] = discriminator_from_state(parts["D"], f"discriminator in {source}", order.discriminator == "BGR")
    net["colour_order"] = order.describe()
    fields = {k: meta[k] for k in _META_FIELDS if k in meta and type(meta[k]) in (str, int, float)}
    if fields:
        net["mmgen_meta"] = fields
    notes = [names[g_key]] + ([f"no w_avg: the mean of {rosinality.W_AVG_SAMPLES} mapped latents"] if estimated else [])
    net["format"] = f"{FORMAT_NAME} ({'; '.join(notes)})"
    return net


def state_dict_prefixes(state: dict[str, Any]) -> str:
    """The distinct first parts of a state dict's keys ('backbone., head.'), for an error line."""
    prefixes = list(dict.fromkeys(shorten(str(k).split(".")[0], 40) + ("." if "." in str(k) else "") for k in state))
    return first_few(prefixes, 8) or "nothing"


def found_text(obj: Any) -> str:
    """What a refused checkpoint's ``state_dict`` holds, where it has one ("; its state_dict holds …")."""
    state = _state_dict(obj)
    return f"; its state_dict holds {state_dict_prefixes(state)}" if isinstance(state, dict) else ""


def neither_network(source: str, state: dict[str, Any]) -> StyleGANError:
    return StyleGANError(f"{source} holds no generator: its state_dict holds {state_dict_prefixes(state)}; "
                         f"expected {LAYOUT_TEXT}", _FIX)


def load_mmgeneration(path: str | Path, output_order: str | None = None) -> dict[str, Any]:
    """Load an MMGeneration/mmagic ``.pth`` from a local path, stating the generator's colour order."""
    source = str(path)
    obj = read_torch_file(Path(path), source)
    if not is_mmgeneration(obj):
        raise StyleGANError(f"{source} is not an MMGeneration/mmagic checkpoint: it holds "
                            f"{rosinality.describe_keys(obj)}", _FIX)
    return networks_from_checkpoint(obj, source, output_order)


__all__ = ["FORMAT_NAME", "PREFIXES", "LAYOUT_TEXT", "generator_pairs", "discriminator_pairs", "mmgen_name",
           "is_mmgeneration", "networks_from_checkpoint", "load_mmgeneration", "ColourOrder"]
