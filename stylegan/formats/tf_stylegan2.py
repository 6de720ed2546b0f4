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
from stylegan.formats.tf_common import (
    Kwargs,
    Variables,
    build_converted,
    check_lod,
    check_positive_int,
    check_resolution,
    conv_to_torch,
    dense_to_torch,
    to_tensor,
)
from stylegan.formats.tf_pickle import STYLEGAN2_ADA, TFNetwork
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
        raise StyleGANError(f"{kw.what} was built with fmap_min={fmap_min}, which widens layers beyond "
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
    z_dim = check_positive_int(kw.get_or("latent_size", 512), "latent_size", what)
    c_dim = check_positive_int(kw.get_or("label_size", 0), "label_size", what)
    w_dim = check_positive_int(kw.get_or("dlatent_size", 512), "dlatent_size", what)
    resolution = check_resolution(kw.get_or("resolution", 1024), what)
    img_channels = check_positive_int(kw.get_or("num_channels", 3), "num_channels", what)
    num_layers = check_positive_int(kw.get_or("mapping_layers", 8), "mapping_layers", what)
    # StyleGAN2-TF's mapping width defaults to 512; ADA's to w_dim (None).
    layer_features = kw.get("mapping_fmaps", None if ada else 512)
    beta = kw.get("dlatent_avg_beta", 0.995)
    mapping_kwargs: dict[str, Any] = dict(
        num_layers=num_layers, layer_features=layer_features,
        activation=_activation(kw, "mapping_nonlinearity"),
        lr_multiplier=float(kw.get_or("mapping_lrmul", 0.01)),
        w_avg_beta=1.0 if beta is None else float(beta),  # None = not tracked: w_avg stays as stored
    )
    kw.require("normalize_latents", [True], True)
    if ada:
        label_fmaps = kw.get_or("label_fmaps", z_dim)  # TF: None = latent_size
        if c_dim > 0:
            mapping_kwargs["embed_features"] = check_positive_int(label_fmaps, "label_fmaps", what)
    channel_base, channel_max = _capacity(kw, resolution)
    if ada:
        fmap_const = kw.get("fmap_const")
        if fmap_const is not None and fmap_const != _nf(1, channel_base, channel_max):
            raise StyleGANError(f"{what} was built with fmap_const={fmap_const}, which differs from the 4×4 "
                                "channel count", "this network variant cannot be converted")
    synthesis_kwargs: dict[str, Any] = dict(
        channel_base=channel_base, channel_max=channel_max,
        num_fp16_res=check_positive_int(kw.get_or("num_fp16_res", 0), "num_fp16_res", what) if ada else 0,
        conv_clamp=kw.get("conv_clamp") if ada else None,
        architecture=kw.require("architecture", ["orig", "skip", "resnet"], "skip"),
        resample_filter=_resample_filter(kw),
        use_noise=bool(kw.require("use_noise", [True, False], True)) if ada else True,
        activation=_activation(kw, "nonlinearity"),
    )
    kw.require("mapping_func", ["G_mapping"], "G_mapping")
    kw.require("synthesis_func", ["G_synthesis" if ada else "G_synthesis_stylegan2"],
               "G_synthesis" if ada else "G_synthesis_stylegan2")
    kw.ignore("dlatent_broadcast", *_GRAPH_KWARGS)
    kw.finish()
    net.component("mapping", what), net.component("synthesis", what)

    variables = Variables(net.all_variables(), what)
    check_lod(variables, "lod")
    label_concat = "mapping/LabelConcat/weight" in variables
    if c_dim > 0 and ada == label_concat or c_dim == 0 and (label_concat or "mapping/LabelEmbed/weight" in variables):
        raise StyleGANError(f"{what}: label_size={c_dim} disagrees with its label variables",
                            "the file is damaged")
    class_name = "LabelConcatGenerator" if label_concat else "Generator"
    if label_concat:
        mapping_kwargs.pop("embed_features", None)
    tensors = _generator_tensors(variables, resolution, mapping_kwargs, synthesis_kwargs, c_dim, label_concat)
    variables.finish()
    init_kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=resolution, img_channels=img_channels,
                       mapping_kwargs=mapping_kwargs, synthesis_kwargs=synthesis_kwargs)
    return build_converted(class_name, init_kwargs, tensors, what)


def _generator_tensors(v: Variables, resolution: int, mapping_kwargs: dict, synthesis_kwargs: dict, c_dim: int,
                       label_concat: bool) -> dict[str, torch.Tensor]:
    t: dict[str, torch.Tensor] = {"mapping.w_avg": to_tensor(v.take("dlatent_avg"))}
    if c_dim > 0 and label_concat:
        t["mapping.label_concat.weight"] = dense_to_torch(v.take("mapping/LabelConcat/weight"))
    elif c_dim > 0:
        t["mapping.embed.weight"] = dense_to_torch(v.take("mapping/LabelEmbed/weight"))
        t["mapping.embed.bias"] = to_tensor(v.take("mapping/LabelEmbed/bias"))
    for i in range(mapping_kwargs["num_layers"]):
        t[f"mapping.fc{i}.weight"] = dense_to_torch(v.take(f"mapping/Dense{i}/weight"))
        t[f"mapping.fc{i}.bias"] = to_tensor(v.take(f"mapping/Dense{i}/bias"))

    use_noise, architecture = synthesis_kwargs["use_noise"], synthesis_kwargs["architecture"]
    log2 = int(math.log2(resolution))

    def modulated(ours: str, scope: str, noise_index: int | None, flip: bool = False) -> None:
        t[f"{ours}.weight"] = conv_to_torch(v.take(f"{scope}/weight"), flip=flip)
        t[f"{ours}.bias"] = to_tensor(v.take(f"{scope}/bias"))
        t[f"{ours}.affine.weight"] = dense_to_torch(v.take(f"{scope}/mod_weight"))
        t[f"{ours}.affine.bias"] = to_tensor(v.take(f"{scope}/mod_bias") + 1)  # TF adds the 1 at run time
        if noise_index is not None and use_noise:
            t[f"{ours}.noise_const"] = to_tensor(v.take(f"synthesis/noise{noise_index}")[0, 0])
            t[f"{ours}.noise_strength"] = to_tensor(v.take(f"{scope}/noise_strength"))

    t["synthesis.b4.const"] = to_tensor(v.take("synthesis/4x4/Const/const")[0])
    for r in range(2, log2 + 1):
        res = 2**r
        scope, ours = f"synthesis/{res}x{res}", f"synthesis.b{res}"
        if r == 2:
            modulated(f"{ours}.conv1", f"{scope}/Conv", 0)
        else:
            modulated(f"{ours}.conv0", f"{scope}/Conv0_up", 2 * r - 5, flip=True)
            modulated(f"{ours}.conv1", f"{scope}/Conv1", 2 * r - 4)
            if architecture == "resnet":
                t[f"{ours}.skip.weight"] = conv_to_torch(v.take(f"{scope}/Skip/weight"), flip=True)
        if architecture == "skip" or r == log2:
            modulated(f"{ours}.torgb", f"{scope}/ToRGB", None)
    return t


def convert_discriminator(net: TFNetwork, family: str, what: str) -> nn.Module:
    """``D_stylegan2`` / ``D_main`` → our Discriminator, or LabelScoreDiscriminator for conditional
    StyleGAN2-TF networks."""
    ada = family == STYLEGAN2_ADA
    expected = "D_main" if ada else "D_stylegan2"
    if net.build_func_name != expected:
        raise StyleGANError(f"{what} is an unsupported TensorFlow discriminator: {net.build_func_name}",
                            f"a {family} snapshot's D must be {expected}; load the generator alone by "
                            "re-saving it, or use another snapshot")
    kw = Kwargs(net.static_kwargs, what)
    c_dim = check_positive_int(kw.get_or("label_size", 0), "label_size", what)
    resolution = check_resolution(kw.get_or("resolution", 1024), what)
    img_channels = check_positive_int(kw.get_or("num_channels", 3), "num_channels", what)
    channel_base, channel_max = _capacity(kw, resolution)
    activation = _activation(kw, "nonlinearity")
    architecture = kw.require("architecture", ["orig", "skip", "resnet"], "resnet")
    group = kw.get("mbstd_group_size", None)  # see _MBSTD_NOTE
    num_features = check_positive_int(kw.get_or("mbstd_num_features", 1), "mbstd_num_features", what)
    if not ada and group is not None and group <= 1:
        num_features = 0  # D_stylegan2 has no minibatch-std layer at all for groups of 0 or 1
    if group is not None:
        group = check_positive_int(group, "mbstd_group_size", what) or None
    nf0, nf1 = _nf(0, channel_base, channel_max), _nf(1, channel_base, channel_max)
    if nf0 != nf1:  # our epilogue's dense layer keeps the 4×4 channel count, TF's has nf(0) outputs
        raise StyleGANError(f"{what} has {nf0} features after its dense layer and {nf1} channels at 4×4, which "
                            "our discriminator cannot express", "this network variant cannot be converted")
    init_kwargs: dict[str, Any] = dict(
        c_dim=c_dim, img_resolution=resolution, img_channels=img_channels, architecture=architecture,
        channel_base=channel_base, channel_max=channel_max,
        num_fp16_res=check_positive_int(kw.get_or("num_fp16_res", 0), "num_fp16_res", what) if ada else 0,
        conv_clamp=kw.get("conv_clamp") if ada else None,
        block_kwargs=dict(activation=activation, resample_filter=_resample_filter(kw),
                          freeze_layers=check_positive_int(kw.get_or("freeze_layers", 0), "freeze_layers", what)
                          if ada else 0),
        epilogue_kwargs=dict(mbstd_group_size=group, mbstd_num_channels=num_features, activation=activation),
    )
    if ada:
        mapping_fmaps = check_positive_int(kw.get_or("mapping_fmaps", nf0), "mapping_fmaps", what)
        mapping_layers = check_positive_int(kw.get_or("mapping_layers", 0), "mapping_layers", what)
        mapping_lrmul = float(kw.get_or("mapping_lrmul", 0.1))
        if c_dim > 0:
            init_kwargs["cmap_dim"] = mapping_fmaps
            init_kwargs["mapping_kwargs"] = dict(num_layers=mapping_layers, embed_features=mapping_fmaps,
                                                 layer_features=mapping_fmaps, activation=activation,
                                                 lr_multiplier=mapping_lrmul)
        # Comparison methods of the ADA paper: convertible only when switched off.
        kw.require("use_pagan", [False], False)
        kw.require("score_max", [1], 1)
        kw.require("score_size", [1], 1)
        kw.require("use_spectral_norm", [False], False)
        kw.require("adaptive_dropout", [0, 0.0], 0)
        kw.ignore("pagan_num", "pagan_fade", "augment_strength")
    kw.ignore(*_GRAPH_KWARGS)
    kw.finish()

    variables = Variables(net.all_variables(), what)
    check_lod(variables, "lod")
    t: dict[str, torch.Tensor] = {}

    def conv(ours: str, scope: str, bias: bool = True) -> None:
        t[f"{ours}.weight"] = conv_to_torch(variables.take(f"{scope}/weight"))
        if bias:
            t[f"{ours}.bias"] = to_tensor(variables.take(f"{scope}/bias"))

    def dense(ours: str, scope: str) -> None:
        t[f"{ours}.weight"] = dense_to_torch(variables.take(f"{scope}/weight"))
        t[f"{ours}.bias"] = to_tensor(variables.take(f"{scope}/bias"))

    log2 = int(math.log2(resolution))
    for r in range(log2, 2, -1):
        res = 2**r
        if architecture == "skip" or r == log2:
            conv(f"b{res}.fromrgb", f"{res}x{res}/FromRGB")
        conv(f"b{res}.conv0", f"{res}x{res}/Conv0")
        conv(f"b{res}.conv1", f"{res}x{res}/Conv1_down")
        if architecture == "resnet":
            conv(f"b{res}.skip", f"{res}x{res}/Skip", bias=False)
    if architecture == "skip":
        conv("b4.fromrgb", "4x4/FromRGB")
    conv("b4.conv", "4x4/Conv")
    dense("b4.fc", "4x4/Dense0")
    dense("b4.out", "Output")
    class_name = "Discriminator"
    if c_dim > 0 and ada:
        dense("mapping.embed", "LabelEmbed")
        for i in range(init_kwargs["mapping_kwargs"]["num_layers"]):
            dense(f"mapping.fc{i}", f"Mapping{i}")
    elif c_dim > 0:
        class_name = "LabelScoreDiscriminator"
    variables.finish()
    return build_converted(class_name, init_kwargs, t, what)
