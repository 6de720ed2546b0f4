"""StyleGAN2 and StyleGAN2-ADA TensorFlow networks → our StyleGAN2 Generator / Discriminator.

The conversion is the one the official stylegan2-ada-pytorch converter performs (conv kernels
``[kh, kw, in, out]`` → ``[out, in, kh, kw]``; the upsampling ``Conv0_up`` and generator ``Skip``
kernels flipped in both spatial axes, because the TF op convolves where ours correlates; modulation
biases + 1, as TF adds the 1 at run time; ``const[0]``; noise inputs ``noise{2·log2 r − 5}`` and
``noise{2·log2 r − 4}`` for the two convs at resolution r; ``channel_base = 2 · fmap_base``), with two
additions: conditional StyleGAN2 (TF) networks, which the official converter cannot read, load as
``LabelConcatGenerator`` / ``LabelScoreDiscriminator``; and kwargs the file omits take the defaults of
the TF code that built the network (they agree with the official converter's defaults except for the
discriminator's minibatch-std group, where we follow the converter: the whole batch; see
``_MBSTD_NOTE``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from stylegan.errors import StyleGANError
from stylegan.formats.tf_common import (STYLEGAN2_ADA, Kwargs, TensorMap, TFNetwork, Variables, build_converted,
                                       check_lod, check_positive_int, latent_sizes, network_size)
from stylegan.limits import quote, shorten
from stylegan.ops import ACTIVATIONS

# _MBSTD_NOTE: D_stylegan2 (TF) defaults to groups of 4 for the minibatch standard deviation; the official
# converter uses the whole minibatch when the file does not say. We follow the converter, so D(x) equals
# what the official PyTorch tools compute from the same file; with batches of at most 4 the two agree.

# Static kwargs that do not change a trained network's outputs (training schedule, graph options).
_GRAPH_KWARGS = ("truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
                 "style_mixing_prob", "randomize_noise", "fused_modconv", "dtype", "structure",
                 "is_template_graph", "force_clean_graph", "is_training", "is_validation", "return_dlatents")


def _resample_filter(kw: Kwargs) -> list[float]:
    taps = kw.get("resample_kernel", [1, 3, 3, 1])
    return [1, 1] if taps is None else list(taps)  # TF: None = box filter


def _activation(kw: Kwargs, name: str) -> str:
    return kw.require(name, [a for a in ACTIVATIONS if a != "linear"], "lrelu")


def _capacity(kw: Kwargs, resolution: int) -> tuple[int, int]:
    """(channel_base, channel_max) for our networks from fmap_base/fmap_max (fmap_decay 1 only)."""
    fmap_base = check_positive_int(kw.get_or("fmap_base", 16384), "fmap_base", kw.what)
    fmap_max = check_positive_int(kw.get_or("fmap_max", 512), "fmap_max", kw.what)
    kw.require("fmap_decay", [1, 1.0], 1)
    fmap_min = kw.get_or("fmap_min", 1)
    smallest = min(fmap_base * 2 // resolution, fmap_max)
    if smallest < fmap_min:  # TF would clip some layers up to fmap_min; ours has no such floor
        raise StyleGANError(f"{kw.what} was built with fmap_min={quote(fmap_min)}, which widens layers beyond "
                            f"fmap_base/resolution", "this network variant cannot be converted")
    return 2 * fmap_base, fmap_max


def _nf(stage: int, channel_base: int, channel_max: int) -> int:
    """TF's nf(stage) = min(fmap_base / 2^stage, fmap_max)."""
    return min(channel_base // 2 ** (stage + 1), channel_max)


def convert_generator(net: TFNetwork, family: str, what: str) -> nn.Module:
    """``G_main`` (StyleGAN2 or StyleGAN2-ADA TF) → our Generator, or LabelConcatGenerator for conditional
    StyleGAN2-TF networks."""
    ada = family == STYLEGAN2_ADA
    kw = Kwargs(net.static_kwargs, what)
    z_dim, w_dim = latent_sizes(kw)
    c_dim, resolution, img_channels = network_size(kw, default_resolution=1024, default_channels=3)
    mapping_kwargs = _mapping_kwargs(kw, ada, z_dim, c_dim)
    synthesis_kwargs = _synthesis_kwargs(kw, ada, resolution)
    kw.require("mapping_func", ["G_mapping"], "G_mapping")
    synthesis_func = "G_synthesis" if ada else "G_synthesis_stylegan2"
    kw.require("synthesis_func", [synthesis_func], synthesis_func)
    kw.ignore("dlatent_broadcast", *_GRAPH_KWARGS)
    kw.finish()
    net.component("mapping", what), net.component("synthesis", what)

    variables = Variables(net.all_variables(), what)
    check_lod(variables, "lod")
    label_concat = _uses_label_concat(variables, ada, c_dim)
    if label_concat:
        mapping_kwargs.pop("embed_features", None)
    tensors = _generator_tensors(variables, resolution, mapping_kwargs, synthesis_kwargs, c_dim, label_concat)
    variables.finish()
    init_kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=resolution, img_channels=img_channels,
                       mapping_kwargs=mapping_kwargs, synthesis_kwargs=synthesis_kwargs)
    return build_converted("LabelConcatGenerator" if label_concat else "Generator", init_kwargs, tensors, what)


def _mapping_kwargs(kw: Kwargs, ada: bool, z_dim: int, c_dim: int) -> dict[str, Any]:
    """Our MappingNetwork's kwargs from G_main's (``embed_features`` only for ADA's label embedding)."""
    beta = kw.get("dlatent_avg_beta", 0.995)
    mapping_kwargs: dict[str, Any] = dict(
        num_layers=check_positive_int(kw.get_or("mapping_layers", 8), "mapping_layers", kw.what),
        layer_features=kw.get("mapping_fmaps", None if ada else 512),  # StyleGAN2-TF: 512; ADA: None = w_dim
        activation=_activation(kw, "mapping_nonlinearity"),
        lr_multiplier=float(kw.get_or("mapping_lrmul", 0.01)),
        w_avg_beta=1.0 if beta is None else float(beta),  # None = not tracked: w_avg stays as stored
    )
    kw.require("normalize_latents", [True], True)
    if ada:
        label_fmaps = kw.get_or("label_fmaps", z_dim)  # TF: None = latent_size
        if c_dim > 0:
            mapping_kwargs["embed_features"] = check_positive_int(label_fmaps, "label_fmaps", kw.what)
    return mapping_kwargs


def _synthesis_kwargs(kw: Kwargs, ada: bool, resolution: int) -> dict[str, Any]:
    """Our SynthesisNetwork's kwargs from G_main's (fp16, clamping and noise switches exist only in ADA)."""
    channel_base, channel_max = _capacity(kw, resolution)
    if ada:
        fmap_const = kw.get("fmap_const")
        if fmap_const is not None and fmap_const != _nf(1, channel_base, channel_max):
            raise StyleGANError(f"{kw.what} was built with fmap_const={quote(fmap_const)}, which differs from the 4×4 "
                                "channel count", "this network variant cannot be converted")
    return dict(
        channel_base=channel_base, channel_max=channel_max,
        num_fp16_res=_ada_count(kw, "num_fp16_res", ada),
        conv_clamp=kw.get("conv_clamp") if ada else None,
        architecture=kw.require("architecture", ["orig", "skip", "resnet"], "skip"),
        resample_filter=_resample_filter(kw),
        use_noise=bool(kw.require("use_noise", [True, False], True)) if ada else True,
        activation=_activation(kw, "nonlinearity"),
    )


def _uses_label_concat(variables: Variables, ada: bool, c_dim: int) -> bool:
    """Whether a conditional generator concatenates labels (StyleGAN2-TF) rather than embedding them (ADA);
    an error when its label variables disagree with its ``label_size``."""
    label_concat = "mapping/LabelConcat/weight" in variables
    label_embed = "mapping/LabelEmbed/weight" in variables
    if (c_dim > 0 and ada == label_concat) or (c_dim == 0 and (label_concat or label_embed)):
        raise StyleGANError(f"{variables.what}: label_size={c_dim} disagrees with its label variables",
                            "the file is damaged")
    return label_concat


def _generator_tensors(variables: Variables, resolution: int, mapping_kwargs: dict, synthesis_kwargs: dict,
                       c_dim: int, label_concat: bool) -> dict[str, torch.Tensor]:
    """Our Generator (or LabelConcatGenerator) state dict from G_main's variables (see the module docstring)."""
    tm = TensorMap(variables)
    tm.value("mapping.w_avg", "dlatent_avg")
    if c_dim > 0 and label_concat:
        tm.matrix("mapping.label_concat.weight", "mapping/LabelConcat/weight")
    elif c_dim > 0:
        tm.dense_layer("mapping.embed", "mapping/LabelEmbed")
    for i in range(mapping_kwargs["num_layers"]):
        tm.dense_layer(f"mapping.fc{i}", f"mapping/Dense{i}")

    use_noise, architecture = synthesis_kwargs["use_noise"], synthesis_kwargs["architecture"]

    def modulated(ours: str, scope: str, noise_index: int | None, flip: bool = False) -> None:
        tm.conv_layer(f"{ours}.weight", f"{ours}.bias", scope, flip=flip)
        tm.matrix(f"{ours}.affine.weight", f"{scope}/mod_weight")
        tm.value(f"{ours}.affine.bias", f"{scope}/mod_bias", plus=1)  # TF adds the 1 at run time
        if noise_index is not None and use_noise:
            tm.value(f"{ours}.noise_const", f"synthesis/noise{noise_index}", index=(0, 0))
            tm.value(f"{ours}.noise_strength", f"{scope}/noise_strength")

    tm.value("synthesis.b4.const", "synthesis/4x4/Const/const", index=(0,))
    top = int(math.log2(resolution))
    for log2_res in range(2, top + 1):
        side = 2**log2_res
        scope, ours = f"synthesis/{side}x{side}", f"synthesis.b{side}"
        if log2_res == 2:
            modulated(f"{ours}.conv1", f"{scope}/Conv", 0)
        else:
            modulated(f"{ours}.conv0", f"{scope}/Conv0_up", 2 * log2_res - 5, flip=True)
            modulated(f"{ours}.conv1", f"{scope}/Conv1", 2 * log2_res - 4)
            if architecture == "resnet":
                tm.kernel(f"{ours}.skip.weight", f"{scope}/Skip/weight", flip=True)
        if architecture == "skip" or log2_res == top:
            modulated(f"{ours}.torgb", f"{scope}/ToRGB", None)
    return tm.tensors


def convert_discriminator(net: TFNetwork, family: str, what: str) -> nn.Module:
    """``D_stylegan2`` / ``D_main`` → our Discriminator, or LabelScoreDiscriminator for conditional
    StyleGAN2-TF networks."""
    ada = family == STYLEGAN2_ADA
    _check_discriminator_build_func(net, family, ada, what)
    kw = Kwargs(net.static_kwargs, what)
    init_kwargs = _discriminator_kwargs(kw, ada)
    kw.ignore(*_GRAPH_KWARGS)
    kw.finish()

    variables = Variables(net.all_variables(), what)
    check_lod(variables, "lod")
    embedding_layers = init_kwargs["mapping_kwargs"]["num_layers"] if "mapping_kwargs" in init_kwargs else None
    tensors = _discriminator_tensors(variables, init_kwargs["img_resolution"], init_kwargs["architecture"],
                                     embedding_layers)
    variables.finish()
    # A conditional StyleGAN2 (TF) D scores labels with its output layer, which ours does in a subclass.
    plain = init_kwargs["c_dim"] == 0 or ada
    return build_converted("Discriminator" if plain else "LabelScoreDiscriminator", init_kwargs, tensors, what)


def _check_discriminator_build_func(net: TFNetwork, family: str, ada: bool, what: str) -> None:
    expected = "D_main" if ada else "D_stylegan2"
    if net.build_func_name != expected:
        raise StyleGANError(f"{what} is an unsupported TensorFlow discriminator: {shorten(net.build_func_name)}",
                            f"a {family} snapshot's D must be {expected}; load the generator alone by "
                            "re-saving it, or use another snapshot")


def _discriminator_kwargs(kw: Kwargs, ada: bool) -> dict[str, Any]:
    """Our Discriminator's init kwargs from D_stylegan2's / D_main's static kwargs."""
    c_dim, resolution, img_channels = network_size(kw, default_resolution=1024, default_channels=3)
    channel_base, channel_max = _capacity(kw, resolution)
    activation = _activation(kw, "nonlinearity")
    architecture = kw.require("architecture", ["orig", "skip", "resnet"], "resnet")
    group, num_features = _minibatch_std(kw, ada)
    dense_features = _check_epilogue_widths(kw, channel_base, channel_max)
    init_kwargs: dict[str, Any] = dict(
        c_dim=c_dim, img_resolution=resolution, img_channels=img_channels, architecture=architecture,
        channel_base=channel_base, channel_max=channel_max,
        num_fp16_res=_ada_count(kw, "num_fp16_res", ada), conv_clamp=kw.get("conv_clamp") if ada else None,
        block_kwargs=dict(activation=activation, resample_filter=_resample_filter(kw),
                          freeze_layers=_ada_count(kw, "freeze_layers", ada)),
        epilogue_kwargs=dict(mbstd_group_size=group, mbstd_num_channels=num_features, activation=activation),
    )
    if ada:
        init_kwargs.update(_ada_label_mapping(kw, c_dim, dense_features, activation))
        _refuse_ada_comparison_methods(kw)
    return init_kwargs


def _ada_count(kw: Kwargs, name: str, ada: bool) -> int:
    """A non-negative count only StyleGAN2-ADA (TF) has (``num_fp16_res``, ``freeze_layers``); 0 otherwise."""
    return check_positive_int(kw.get_or(name, 0), name, kw.what) if ada else 0


def _minibatch_std(kw: Kwargs, ada: bool) -> tuple[int | None, int]:
    """(group size, None = whole batch; feature count) of the minibatch-std layer (see _MBSTD_NOTE)."""
    group = kw.get("mbstd_group_size", None)
    num_features = check_positive_int(kw.get_or("mbstd_num_features", 1), "mbstd_num_features", kw.what)
    if not ada and group is not None and group <= 1:
        num_features = 0  # D_stylegan2 has no minibatch-std layer at all for groups of 0 or 1
    if group is not None:
        group = check_positive_int(group, "mbstd_group_size", kw.what) or None
    return group, num_features


def _check_epilogue_widths(kw: Kwargs, channel_base: int, channel_max: int) -> int:
    """nf(0), the width of TF's dense layer, which ours can only express when it equals the 4×4 channels."""
    dense_features, channels_4x4 = _nf(0, channel_base, channel_max), _nf(1, channel_base, channel_max)
    if dense_features != channels_4x4:  # our epilogue's dense layer keeps the 4×4 channel count
        raise StyleGANError(f"{kw.what} has {dense_features} features after its dense layer and {channels_4x4} "
                            "channels at 4×4, which our discriminator cannot express",
                            "this network variant cannot be converted")
    return dense_features


def _ada_label_mapping(kw: Kwargs, c_dim: int, default_width: int, activation: str) -> dict[str, Any]:
    """D_main's label embedding (projection discriminator) as our cmap_dim/mapping_kwargs; {} when
    unconditional. The kwargs are read either way so ``Kwargs.finish`` accepts them."""
    width = check_positive_int(kw.get_or("mapping_fmaps", default_width), "mapping_fmaps", kw.what)
    layers = check_positive_int(kw.get_or("mapping_layers", 0), "mapping_layers", kw.what)
    lr_multiplier = float(kw.get_or("mapping_lrmul", 0.1))
    if c_dim == 0:
        return {}
    return dict(cmap_dim=width, mapping_kwargs=dict(num_layers=layers, embed_features=width, layer_features=width,
                                                    activation=activation, lr_multiplier=lr_multiplier))


def _refuse_ada_comparison_methods(kw: Kwargs) -> None:
    """The ADA paper's comparison methods: convertible only when switched off."""
    for name, off in (("use_pagan", [False]), ("score_max", [1]), ("score_size", [1]),
                      ("use_spectral_norm", [False]), ("adaptive_dropout", [0, 0.0])):
        kw.require(name, off, off[0])
    kw.ignore("pagan_num", "pagan_fade", "augment_strength")


def _discriminator_tensors(variables: Variables, resolution: int, architecture: str,
                           embedding_layers: int | None) -> dict[str, torch.Tensor]:
    """Our Discriminator state dict from D's variables; ``embedding_layers`` is the label mapping's depth
    for a conditional D_main, None otherwise."""
    tm = TensorMap(variables)

    def conv(ours: str, scope: str, bias: bool = True) -> None:
        tm.conv_layer(f"{ours}.weight", f"{ours}.bias" if bias else None, scope)

    top = int(math.log2(resolution))
    for log2_res in range(top, 2, -1):
        side = 2**log2_res
        scope = f"{side}x{side}"
        if architecture == "skip" or log2_res == top:
            conv(f"b{side}.fromrgb", f"{scope}/FromRGB")
        conv(f"b{side}.conv0", f"{scope}/Conv0")
        conv(f"b{side}.conv1", f"{scope}/Conv1_down")
        if architecture == "resnet":
            conv(f"b{side}.skip", f"{scope}/Skip", bias=False)
    if architecture == "skip":
        conv("b4.fromrgb", "4x4/FromRGB")
    conv("b4.conv", "4x4/Conv")
    tm.dense_layer("b4.fc", "4x4/Dense0")
    tm.dense_layer("b4.out", "Output")
    if embedding_layers is not None:
        tm.dense_layer("mapping.embed", "LabelEmbed")
        for i in range(embedding_layers):
            tm.dense_layer(f"mapping.fc{i}", f"Mapping{i}")
    return tm.tensors
