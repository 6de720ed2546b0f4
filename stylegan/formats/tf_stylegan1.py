"""StyleGAN (v1) TensorFlow networks (``G_style`` with ``G_mapping``/``G_synthesis``, ``D_basic``) → ours.

Kernels ``[kh, kw, in, out]`` become ``[out, in, kh, kw]`` (no flips: our layers apply them exactly as
TF does, fused transposed convolutions included), dense weights ``[in, out]`` become ``[out, in]``, the
constant loses its batch axis and each noise input ``noise{i}`` ``[1, 1, r, r]`` becomes the
``noise_const`` of layer i (const layer 0, 4×4 conv 1, at 2^k: upsampling conv 2k − 4, conv 2k − 3).
Only the full-resolution output layers (``ToRGB_lod0``, ``FromRGB_lod0``) of a finished network
(``lod`` = 0) are used; the lower-resolution ones that progressive growing left behind are dropped.
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
from stylegan.formats.tf_pickle import TFNetwork

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


def convert_generator(net: TFNetwork, what: str) -> nn.Module:
    """``G_style`` → StyleGAN1Generator."""
    kw = Kwargs(net.static_kwargs, what)
    z_dim = check_positive_int(kw.get_or("latent_size", 512), "latent_size", what)
    c_dim = check_positive_int(kw.get_or("label_size", 0), "label_size", what)
    w_dim = check_positive_int(kw.get_or("dlatent_size", 512), "dlatent_size", what)
    resolution = check_resolution(kw.get_or("resolution", 1024), what)
    img_channels = check_positive_int(kw.get_or("num_channels", 3), "num_channels", what)
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
        raise StyleGANError(f"{what} has an unsupported mapping network: {mapping.build_func_name}",
                            "only G_style with G_mapping and G_synthesis is supported")

    v = Variables(net.all_variables(), what)
    check_lod(v, "lod")
    check_lod(v, "synthesis/lod")
    t: dict[str, torch.Tensor] = {"mapping.w_avg": to_tensor(v.take("dlatent_avg"))}
    if c_dim > 0:
        t["mapping.label_concat.weight"] = dense_to_torch(v.take("mapping/LabelConcat/weight"))
    for i in range(mapping_kwargs["num_layers"]):
        t[f"mapping.fc{i}.weight"] = dense_to_torch(v.take(f"mapping/Dense{i}/weight"))
        t[f"mapping.fc{i}.bias"] = to_tensor(v.take(f"mapping/Dense{i}/bias"))

    def layer(ours: str, scope: str, index: int, conv: bool = True) -> None:
        if conv:
            t[f"{ours}.weight"] = conv_to_torch(v.take(f"{scope}/weight"))
        if use_noise:
            t[f"{ours}.epilogue.noise_weight"] = to_tensor(v.take(f"{scope}/Noise/weight"))
            t[f"{ours}.epilogue.noise_const"] = to_tensor(v.take(f"synthesis/noise{index}")[0, 0])
        t[f"{ours}.epilogue.bias"] = to_tensor(v.take(f"{scope}/bias"))
        t[f"{ours}.epilogue.style.weight"] = dense_to_torch(v.take(f"{scope}/StyleMod/weight"))
        t[f"{ours}.epilogue.style.bias"] = to_tensor(v.take(f"{scope}/StyleMod/bias"))

    t["synthesis.b4.const"] = to_tensor(v.take("synthesis/4x4/Const/const")[0])
    layer("synthesis.b4.conv0", "synthesis/4x4/Const", 0, conv=False)
    layer("synthesis.b4.conv1", "synthesis/4x4/Conv", 1)
    log2 = int(math.log2(resolution))
    for r in range(3, log2 + 1):
        res = 2**r
        layer(f"synthesis.b{res}.conv0", f"synthesis/{res}x{res}/Conv0_up", 2 * r - 4)
        layer(f"synthesis.b{res}.conv1", f"synthesis/{res}x{res}/Conv1", 2 * r - 3)
    t["synthesis.torgb_weight"] = conv_to_torch(v.take("synthesis/ToRGB_lod0/weight"))
    t["synthesis.torgb_bias"] = to_tensor(v.take("synthesis/ToRGB_lod0/bias"))
    v.ignore(r"synthesis/ToRGB_lod[1-9]\d*/(weight|bias)")  # outputs of earlier growing phases
    v.finish()
    init_kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=resolution, img_channels=img_channels,
                       mapping_kwargs=mapping_kwargs, synthesis_kwargs=synthesis_kwargs,
                       truncation_psi=psi, truncation_cutoff=cutoff)
    return build_converted("StyleGAN1Generator", init_kwargs, t, what)


def convert_discriminator(net: TFNetwork, what: str) -> nn.Module:
    """``D_basic`` → StyleGAN1Discriminator."""
    if net.build_func_name != "D_basic":
        raise StyleGANError(f"{what} is an unsupported TensorFlow discriminator: {net.build_func_name}",
                            "a StyleGAN (v1) snapshot's D must be D_basic")
    kw = Kwargs(net.static_kwargs, what)
    c_dim = check_positive_int(kw.get_or("label_size", 0), "label_size", what)
    resolution = check_resolution(kw.get_or("resolution", 32), what)
    img_channels = check_positive_int(kw.get_or("num_channels", 1), "num_channels", what)
    capacity = _capacity(kw)
    init_kwargs = dict(
        c_dim=c_dim, img_resolution=resolution, img_channels=img_channels, **capacity,
        activation=kw.require("nonlinearity", ["lrelu", "relu"], "lrelu"),
        mbstd_group_size=int(kw.get_or("mbstd_group_size", 4)),
        mbstd_num_channels=check_positive_int(kw.get_or("mbstd_num_features", 1), "mbstd_num_features", what),
        blur_filter=_blur_filter(kw), fused_scale=kw.require("fused_scale", ["auto", True, False], "auto"),
    )
    kw.require("use_wscale", [True], True)
    kw.ignore(*_GRAPH_KWARGS)
    kw.finish()

    v = Variables(net.all_variables(), what)
    check_lod(v, "lod")

    def conv(ours: str, scope: str) -> None:
        t[f"{ours}_weight"] = conv_to_torch(v.take(f"{scope}/weight"))
        t[f"{ours}_bias"] = to_tensor(v.take(f"{scope}/bias"))

    t: dict[str, torch.Tensor] = {}
    conv("fromrgb", "FromRGB_lod0")
    v.ignore(r"FromRGB_lod[1-9]\d*/(weight|bias)")
    log2 = int(math.log2(resolution))
    for r in range(log2, 2, -1):
        conv(f"b{2**r}.conv0", f"{2**r}x{2**r}/Conv0")
        conv(f"b{2**r}.conv1", f"{2**r}x{2**r}/Conv1_down")
    conv("conv", "4x4/Conv")
    for ours, scope in (("fc", "4x4/Dense0"), ("out", "4x4/Dense1")):
        t[f"{ours}.weight"] = dense_to_torch(v.take(f"{scope}/weight"))
        t[f"{ours}.bias"] = to_tensor(v.take(f"{scope}/bias"))
    v.finish()
    return build_converted("StyleGAN1Discriminator", init_kwargs, t, what)
