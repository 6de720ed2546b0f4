"""StyleGAN (v1) TensorFlow networks (``G_style`` with ``G_mapping``/``G_synthesis``, ``D_basic``) → ours.

Kernels ``[kh, kw, in, out]`` become ``[out, in, kh, kw]`` (no flips: our layers apply them exactly as
TF does, fused transposed convolutions included), dense weights ``[in, out]`` become ``[out, in]``, the
constant loses its batch axis and each noise input ``noise{i}`` ``[1, 1, r, r]`` becomes the
``noise_const`` of layer i (const layer 0, 4×4 conv 1, at 2^k: upsampling conv 2k − 4, conv 2k − 3).
Every level's output layer (``ToRGB_lod{k}``, ``FromRGB_lod{k}``, k = 0 at full resolution) is kept, and each
network keeps its own ``lod`` (a snapshot taken mid-training has lod > 0: its output is still blended from
lower resolutions); a network saved without the lower levels (lod 0 only) loads as a fixed full-resolution one.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from stylegan.errors import StyleGANError
from stylegan.formats.tf_common import (Kwargs, TensorMap, TFNetwork, Variables, build_converted,
                                       check_positive_int, latent_sizes, network_size)
from stylegan.limits import shorten
from stylegan.networks.stylegan1 import lod_problem

_GRAPH_KWARGS = ("truncation_psi_val", "truncation_cutoff_val", "style_mixing_prob", "randomize_noise", "dtype",
                 "structure", "is_template_graph", "force_clean_graph", "is_training", "is_validation",
                 "dlatent_broadcast")


def _blur_filter(kw: Kwargs) -> list | None:
    taps = kw.get("blur_filter", [1, 2, 1])
    return list(taps) if taps else None


def _capacity(kw: Kwargs) -> dict[str, Any]:
    return dict(fmap_base=check_positive_int(kw.get_or("fmap_base", 8192), "fmap_base", kw.what),
                fmap_decay=float(kw.get_or("fmap_decay", 1.0)),
                fmap_max=check_positive_int(kw.get_or("fmap_max", 512), "fmap_max", kw.what))


def _default_truncation(kw: Kwargs) -> tuple[float, int | None]:
    """G_style's own truncation defaults (ψ 0.7, cutoff 8) in our terms; TF None/≤0 = off, which is ψ 1."""
    psi, cutoff = kw.get("truncation_psi", 0.7), kw.get("truncation_cutoff", 8)
    if psi is None or cutoff is None or cutoff <= 0:
        return 1.0, 8
    return float(psi), int(cutoff)


def _stored_lod(variables: Variables, name: str, max_lod: int) -> float | None:
    """The network's level of detail ``name`` (None when absent): finite and within ``[0, max_lod]``."""
    if name not in variables:
        return None
    value = variables.take(name)
    if value.shape != ():
        raise StyleGANError(f"{variables.what} has a {name} of shape {list(value.shape)}, expected a number",
                            "the file is damaged")
    lod = float(value)
    problem = lod_problem(lod, max_lod, name)
    if problem:
        raise StyleGANError(f"{variables.what} is damaged: its {problem}",
                            "a snapshot's lod lies between 0 and log2(resolution) - 2; get the file again")
    return lod


def _levels_present(variables: Variables, pattern: str, max_lod: int) -> bool:
    """Whether the file has output layers beyond level 0 (``pattern`` formatted with k = 1, 2, ...); False
    for a network built without progressive growing. Then every level must be there: a gap fails by name."""
    return any(pattern.format(k) in variables for k in range(1, max_lod + 1))


def _lod_tensor(lod: float | None) -> torch.Tensor:
    return torch.tensor(0.0 if lod is None else lod, dtype=torch.float32)


def convert_generator(net: TFNetwork, what: str) -> nn.Module:
    """``G_style`` → StyleGAN1Generator."""
    kw = Kwargs(net.static_kwargs, what)
    z_dim, w_dim = latent_sizes(kw)
    c_dim, resolution, img_channels = network_size(kw, default_resolution=1024, default_channels=3)
    beta = kw.get("dlatent_avg_beta", 0.995)
    mapping_kwargs = dict(
        num_layers=check_positive_int(kw.get_or("mapping_layers", 8), "mapping_layers", what),
        layer_features=check_positive_int(kw.get_or("mapping_fmaps", 512), "mapping_fmaps", what),
        activation=kw.require("mapping_nonlinearity", ["lrelu", "relu"], "lrelu"),
        lr_multiplier=float(kw.get_or("mapping_lrmul", 0.01)),
        normalize_latents=bool(kw.require("normalize_latents", [True, False], True)),
        w_avg_beta=1.0 if beta is None else float(beta),
    )
    use_noise = bool(kw.require("use_noise", [True, False], True))
    synthesis_kwargs = dict(
        **_capacity(kw), use_noise=use_noise,
        activation=kw.require("nonlinearity", ["lrelu", "relu"], "lrelu"),
        blur_filter=_blur_filter(kw), fused_scale=kw.require("fused_scale", ["auto", True, False], "auto"),
    )
    for name in ("use_wscale", "use_styles", "const_input_layer", "use_instance_norm"):
        kw.require(name, [True], True)
    kw.require("use_pixel_norm", [False], False)
    psi, cutoff = _default_truncation(kw)
    kw.ignore(*_GRAPH_KWARGS)
    kw.finish()
    mapping = net.component("mapping", what)
    if mapping.build_func_name != "G_mapping":
        raise StyleGANError(f"{what} has an unsupported mapping network: {shorten(mapping.build_func_name)}",
                            "only G_style with G_mapping and G_synthesis is supported")

    variables = Variables(net.all_variables(), what)
    max_lod = int(math.log2(resolution)) - 2
    progressive = _levels_present(variables, "synthesis/ToRGB_lod{}/weight", max_lod)
    # G_style feeds its own lod to the synthesis network on every run; the synthesis copy is only checked.
    lod = _stored_lod(variables, "lod", max_lod if progressive else 0)
    synthesis_lod = _stored_lod(variables, "synthesis/lod", max_lod if progressive else 0)
    tensors = _generator_tensors(variables, resolution, mapping_kwargs["num_layers"], c_dim, use_noise,
                                 max_lod if progressive else 0)
    if progressive:
        tensors["synthesis.lod"] = _lod_tensor(lod if lod is not None else synthesis_lod)
    variables.finish()
    init_kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=resolution, img_channels=img_channels,
                       mapping_kwargs=mapping_kwargs, synthesis_kwargs=synthesis_kwargs,
                       truncation_psi=psi, truncation_cutoff=cutoff, progressive=progressive)
    return build_converted("StyleGAN1Generator", init_kwargs, tensors, what)


def _generator_tensors(variables: Variables, resolution: int, mapping_layers: int, c_dim: int,
                       use_noise: bool, max_lod: int) -> dict[str, torch.Tensor]:
    """Our StyleGAN1Generator state dict from G_style's variables (see the module docstring)."""
    tm = TensorMap(variables)
    tm.value("mapping.w_avg", "dlatent_avg")
    if c_dim > 0:
        tm.matrix("mapping.label_concat.weight", "mapping/LabelConcat/weight")
    for i in range(mapping_layers):
        tm.dense_layer(f"mapping.fc{i}", f"mapping/Dense{i}")

    def styled_layer(ours: str, scope: str, noise_index: int, has_kernel: bool = True) -> None:
        # A synthesis layer: optional conv kernel, then the epilogue (noise, bias, style modulation).
        if has_kernel:
            tm.kernel(f"{ours}.weight", f"{scope}/weight")
        if use_noise:
            tm.value(f"{ours}.epilogue.noise_weight", f"{scope}/Noise/weight")
            tm.value(f"{ours}.epilogue.noise_const", f"synthesis/noise{noise_index}", index=(0, 0))
        tm.value(f"{ours}.epilogue.bias", f"{scope}/bias")
        tm.dense_layer(f"{ours}.epilogue.style", f"{scope}/StyleMod")

    tm.value("synthesis.b4.const", "synthesis/4x4/Const/const", index=(0,))
    styled_layer("synthesis.b4.conv0", "synthesis/4x4/Const", 0, has_kernel=False)
    styled_layer("synthesis.b4.conv1", "synthesis/4x4/Conv", 1)
    for log2_res in range(3, int(math.log2(resolution)) + 1):
        side = 2**log2_res
        styled_layer(f"synthesis.b{side}.conv0", f"synthesis/{side}x{side}/Conv0_up", 2 * log2_res - 4)
        styled_layer(f"synthesis.b{side}.conv1", f"synthesis/{side}x{side}/Conv1", 2 * log2_res - 3)
    tm.conv_layer("synthesis.torgb_weight", "synthesis.torgb_bias", "synthesis/ToRGB_lod0")
    for k in range(1, max_lod + 1):
        tm.conv_layer(f"synthesis.torgb_lod{k}_weight", f"synthesis.torgb_lod{k}_bias", f"synthesis/ToRGB_lod{k}")
    return tm.tensors


def convert_discriminator(net: TFNetwork, what: str) -> nn.Module:
    """``D_basic`` → StyleGAN1Discriminator."""
    if net.build_func_name != "D_basic":
        raise StyleGANError(f"{what} is an unsupported TensorFlow discriminator: {shorten(net.build_func_name)}",
                            "a StyleGAN (v1) snapshot's D must be D_basic")
    kw = Kwargs(net.static_kwargs, what)
    c_dim, resolution, img_channels = network_size(kw, default_resolution=32, default_channels=1)
    init_kwargs = dict(
        c_dim=c_dim, img_resolution=resolution, img_channels=img_channels, **_capacity(kw),
        activation=kw.require("nonlinearity", ["lrelu", "relu"], "lrelu"),
        mbstd_group_size=int(kw.get_or("mbstd_group_size", 4)),
        mbstd_num_channels=check_positive_int(kw.get_or("mbstd_num_features", 1), "mbstd_num_features", what),
        blur_filter=_blur_filter(kw), fused_scale=kw.require("fused_scale", ["auto", True, False], "auto"),
    )
    kw.require("use_wscale", [True], True)
    kw.ignore(*_GRAPH_KWARGS)
    kw.finish()

    variables = Variables(net.all_variables(), what)
    max_lod = int(math.log2(resolution)) - 2
    progressive = init_kwargs["progressive"] = _levels_present(variables, "FromRGB_lod{}/weight", max_lod)
    lod = _stored_lod(variables, "lod", max_lod if progressive else 0)
    tm = TensorMap(variables)
    tm.conv_layer("fromrgb_weight", "fromrgb_bias", "FromRGB_lod0")
    for k in range(1, max_lod + 1 if progressive else 1):
        tm.conv_layer(f"fromrgb_lod{k}_weight", f"fromrgb_lod{k}_bias", f"FromRGB_lod{k}")
    if progressive:
        tm.tensors["lod"] = _lod_tensor(lod)
    map_discriminator_blocks(tm, resolution)
    variables.finish()
    return build_converted("StyleGAN1Discriminator", init_kwargs, tm.tensors, what)


def map_discriminator_blocks(tm: TensorMap, resolution: int) -> None:
    """The TF names of a v1 / ProGAN discriminator's blocks and 4×4 head → our StyleGAN1Discriminator's
    (the attribute classifiers of the ``ls`` metric share this layout)."""
    for log2_res in range(int(math.log2(resolution)), 2, -1):
        side = 2**log2_res
        tm.conv_layer(f"b{side}.conv0_weight", f"b{side}.conv0_bias", f"{side}x{side}/Conv0")
        tm.conv_layer(f"b{side}.conv1_weight", f"b{side}.conv1_bias", f"{side}x{side}/Conv1_down")
    tm.conv_layer("conv_weight", "conv_bias", "4x4/Conv")
    tm.dense_layer("fc", "4x4/Dense0")
    tm.dense_layer("out", "4x4/Dense1")
