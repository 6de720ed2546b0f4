"""StyleGAN (v1) generator and discriminator (Karras et al. 2019, "A Style-Based Generator Architecture").

The arithmetic is the paper's:

* equalised learning rate: weights are stored at unit scale and multiplied at run time by
  ``gain / sqrt(fan_in) · lr_multiplier`` (gain √2 before an activation, 1 for styles, ToRGB and D's
  output); biases by ``lr_multiplier``;
* mapping: ``[z, c @ W]`` (labels concatenated, if any) → pixel norm → 8 FC layers (lr multiplier 0.01);
* synthesis: a learned 4×4 constant, then per resolution an upsampling conv and a conv; every layer ends
  with noise (per-channel weights) → bias → activation → instance norm → style (AdaIN,
  ``x · (s0 + 1) + s1``); upsampling is nearest ×2 then conv below 128², a transposed conv with the
  box-summed kernel from 128² on ("fused scale"), followed by a ``[1, 2, 1]`` blur;
* progressive growing: a ToRGB (D: FromRGB) at every resolution and a level of detail ``lod`` (0 = full
  resolution, ``log2(res) − 2`` = 4×4), a buffer that forward reads on every call. At ``lod = L + f``
  (L an integer, 0 ≤ f < 1) the output is the block at ``res / 2^L`` blended with the nearest-upsampled
  output of the block below by f, then nearest-upsampled to full size; D mirrors it on the input
  averaged down. This equals the official 'linear' structure (each level blended by
  ``clip(lod − level, 0, 1)``); blocks whose weight is 0 are not computed, as in its 'recursive' one;
* truncation towards ``w_avg`` on the first ``truncation_cutoff`` ws; v1's own defaults are ψ 0.7 and
  cutoff 8 (see ``StyleGAN1Generator`` for how they fit our calling convention).

The generator has the same calling convention as our StyleGAN2 ``Generator`` (``mapping``,
``synthesis``, ``num_ws``, ``w_avg``, ``noise_mode``), so every tool that drives a StyleGAN2 generator
drives this one. Parameter shapes follow the TF variables (transposed to PyTorch's ``[out, in, kh, kw]``).
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from stylegan.errors import StyleGANError
from stylegan.networks.init_record import records_init_kwargs
from stylegan.networks.label_concat import LabelConcat
from stylegan.networks.layers import (NOISE_MODES, MinibatchStdLayer, broadcast_w, expect_shape,
                                      normalize_2nd_moment, track_w_avg, truncate, w_avg_update_wanted)

ACTIVATIONS = ("lrelu", "relu")
SQRT2 = math.sqrt(2)


class _NetworkDefault:
    """Marks an argument the caller left out, so the network's own default (v1: cutoff 8) applies."""

    _instance: "_NetworkDefault | None" = None

    def __new__(cls) -> "_NetworkDefault":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _NetworkDefault()


def feature_maps(stage: int, fmap_base: int, fmap_decay: float, fmap_max: int) -> int:
    """The v1 channel rule ``min(int(fmap_base / 2^(stage · decay)), fmap_max)``; stage = log2(res) − 1."""
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def _log2_resolution(img_resolution: int) -> int:
    if img_resolution < 4 or img_resolution & (img_resolution - 1) != 0 or img_resolution > 2**14:
        raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
    return int(math.log2(img_resolution))


def _check_fused_scale(fused_scale: bool | str) -> None:
    if fused_scale not in (True, False, "auto"):
        raise ValueError(f"fused_scale must be True, False or 'auto', got {fused_scale!r}")


def _uses_fused_scale(resolution: int, fused_scale: bool | str) -> bool:
    """Whether the resampling layer at ``resolution`` (its larger side) is a strided/transposed conv:
    'auto' is v1's choice, from 128×128 on."""
    return resolution >= 128 if fused_scale == "auto" else bool(fused_scale)


def _activate(x: torch.Tensor, activation: str) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) if activation == "lrelu" else F.relu(x)


def _check_activation(activation: str) -> str:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return activation


def _blur_filter(taps: Sequence[float] | None) -> torch.Tensor | None:
    """The normalised 2-D low-pass filter (outer product of 1-D taps), or None for no blur."""
    if not taps:
        return None
    f = torch.as_tensor(list(taps), dtype=torch.float32)
    f = f.ger(f) if f.ndim == 1 else f
    return f / f.sum()


def _register_blur(module: nn.Module, taps: Sequence[float] | None) -> None:
    """Give ``module`` a non-persistent ``blur_filter`` buffer and a ``use_blur`` flag."""
    f = _blur_filter(taps)
    module.register_buffer("blur_filter", f if f is not None else torch.ones([1, 1]), persistent=False)
    module.use_blur = f is not None


def blur(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Depthwise correlation of ``[N, C, H, W]`` with ``f`` and TF 'SAME' zero padding; same size out."""
    kh, kw = f.shape
    weight = f[None, None].to(x.dtype).expand(x.shape[1], 1, kh, kw)
    if kh % 2 and kw % 2:  # odd sizes pad symmetrically: let the convolution do it, without a padded copy
        return F.conv2d(x, weight, padding=(kh // 2, kw // 2), groups=x.shape[1])
    x = F.pad(x, [(kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2])
    return F.conv2d(x, weight, groups=x.shape[1])


class EqualizedLinear(nn.Module):
    """``x @ (weight · gain/√in · lr)ᵀ + bias · lr``, then the activation (None = linear).

    The weight is stored divided by ``lr`` so that its run-time value starts as ``N(0, gain²/in)``.
    """

    def __init__(self, in_features: int, out_features: int, gain: float = SQRT2, lr_multiplier: float = 1.0,
                 activation: str | None = None):
        super().__init__()
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.lr_multiplier = lr_multiplier
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.zeros([out_features]))
        self.weight_scale = gain / math.sqrt(in_features) * lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled_bias = self.bias * self.lr_multiplier
        x = torch.addmm(scaled_bias, x.flatten(1), (self.weight * self.weight_scale).t())
        return _activate(x, self.activation) if self.activation else x

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, act={self.activation or 'linear'}"


def conv_weight(weight: torch.Tensor, gain: float) -> torch.Tensor:
    """Run-time conv weight ``[O, I, k, k]`` of a stored one: times gain / sqrt(I · k · k)."""
    return weight * (gain / math.sqrt(weight[0].numel()))


def box_summed(w: torch.Tensor) -> torch.Tensor:
    """``[O, I, k, k]`` → ``[O, I, k+1, k+1]``: the sum of the kernel shifted by 0/1 pixel in each axis.

    A stride-2 (transposed) convolution with this kernel does "nearest-neighbour resampling and the
    k×k convolution" in one pass, as v1's fused up/downscaling layers do.
    """
    w = F.pad(w, [1, 1, 1, 1])
    return w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]


# --------------------------------------------------------------------------------------------------
# Level of detail (progressive growing)

# What a stored record that lacks these settings meant: files saved before the growing layers existed
# hold the finished full-resolution network only. A loader of stored records fills them in for absent keys.
RECORD_DEFAULTS: dict[str, Any] = {"progressive": False}


def lod_problem(lod: float, max_lod: int, name: str = "lod") -> str | None:
    """Why ``lod`` is not a level of detail of a network whose coarsest level is ``max_lod`` (None: it is one);
    ``name`` is how the message calls it."""
    if not math.isfinite(lod):
        return f"{name} is {lod}, not a finite number"
    if not 0 <= lod <= max_lod:
        coarsest = f"{max_lod} = 4x4" if max_lod else "a network without growing layers has only lod 0"
        return f"{name} is {lod:g}, outside 0 to {max_lod} (0 = full resolution, {coarsest})"
    return None


def lod_parts(lod: float) -> tuple[int, float]:
    """(L, f) of ``lod = L + f``: the finest level computed (its block works at ``res / 2^L``) and the
    weight, in [0, 1), of the upsampled level below it in the blend."""
    level = math.floor(lod)
    return level, lod - level


def describe_lod(lod: float, img_resolution: int) -> str:
    """``lod 1.5 (mid-training: 16x16 fading into 32x32)`` for a 64×64 network, ``lod 2 (mid-training:
    16x16)``; lod 0 is a finished network. Images always come out at full size (nearest-upsampled)."""
    if lod == 0:
        return "lod 0 (full resolution)"
    level, fade = lod_parts(lod)
    side = img_resolution >> level
    state = f"{side // 2}x{side // 2} fading into {side}x{side}" if fade else f"{side}x{side}"
    return f"lod {lod:g} (mid-training: {state})"


def upscale_nearest(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``[N, C, H, W]`` → ``[N, C, H·factor, W·factor]``, each pixel repeated (v1's upscale2d)."""
    return x if factor == 1 else F.interpolate(x, scale_factor=factor, mode="nearest")


def downscale_box(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``[N, C, H, W]`` → ``[N, C, H/factor, W/factor]``, the mean of each factor×factor box (v1's downscale2d)."""
    return x if factor == 1 else F.avg_pool2d(x, factor)


def _register_lod(module: nn.Module, max_lod: int, progressive: bool) -> None:
    """Give ``module`` its ``lod`` buffer (0-dim float32, 0 = full resolution; saved with the network only
    when it has growing layers) and ``max_lod``, and refuse a loaded lod outside ``[0, max_lod]``."""
    module.max_lod = max_lod
    module.register_buffer("lod", torch.zeros([]), persistent=progressive)
    module.register_load_state_dict_post_hook(_refuse_bad_loaded_lod)


def _refuse_bad_loaded_lod(module: nn.Module, _incompatible_keys: Any) -> None:
    problem = lod_problem(float(module.lod), module.max_lod)
    if problem:
        raise StyleGANError(f"the stored network's {problem}",
                            "the file is damaged: a snapshot's lod lies between 0 and log2(resolution) - 2")


def current_lod(module: nn.Module) -> float:
    """The module's ``lod`` buffer as a float, checked (ValueError when out of range or not finite)."""
    lod = float(module.lod)
    problem = lod_problem(lod, module.max_lod)
    if problem:
        raise ValueError(problem)
    return lod


# --------------------------------------------------------------------------------------------------
# Generator


class MappingNetwork(nn.Module):
    def __init__(
        self,
        z_dim: int,
        c_dim: int,  # labels are concatenated to z through a plain matrix (LabelConcat); 0 = none
        w_dim: int,
        num_ws: int,
        num_layers: int = 8,
        layer_features: int = 512,  # hidden width (v1 mapping_fmaps)
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        normalize_latents: bool = True,  # pixel norm on [z, label] before the first layer
        w_avg_beta: float = 0.995,  # decay of the running mean of w (training only)
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.normalize_latents, self.w_avg_beta = num_layers, normalize_latents, w_avg_beta
        _check_activation(activation)
        if c_dim > 0:
            self.label_concat = LabelConcat(c_dim, z_dim)
        widths = [z_dim * (2 if c_dim > 0 else 1)] + [layer_features] * (num_layers - 1) + [w_dim]
        for i in range(num_layers):
            setattr(self, f"fc{i}", EqualizedLinear(widths[i], widths[i + 1], gain=SQRT2,
                                                    lr_multiplier=lr_multiplier, activation=activation))
        self.register_buffer("w_avg", torch.zeros([w_dim]))
        # What truncation does when the caller leaves it out (the generator sets these from its kwargs).
        self.default_truncation_cutoff: int | None = 8

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = DEFAULT, skip_w_avg_update: bool = False,
                update_emas: bool | None = None) -> torch.Tensor:
        """z ``[N, z_dim]``, c ``[N, c_dim]`` → ws ``[N, num_ws, w_dim]``.

        Truncation (``w_avg + ψ (w − w_avg)``) applies when ψ ≠ 1, to ``ws[:, :truncation_cutoff]``;
        cutoff None = every w; left out = the network's default cutoff (8 for v1).
        """
        w = self._w(z, c)
        if w_avg_update_wanted(self.training, skip_w_avg_update, update_emas):
            track_w_avg(self.w_avg, w, self.w_avg_beta)
        ws = broadcast_w(w, self.num_ws)
        cutoff = self.default_truncation_cutoff if truncation_cutoff is DEFAULT else truncation_cutoff
        if cutoff is not None and cutoff <= 0:
            return ws  # as in v1: a cutoff of 0 (or less) turns truncation off
        return truncate(ws, self.w_avg, truncation_psi, cutoff)

    def _w(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """One w per sample, ``[N, w_dim]``: the FC stack on the (normalised) ``[z, embedded label]``."""
        expect_shape(z, [None, self.z_dim], "z")
        x = z.to(torch.float32)
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this network is conditional: pass c of shape [N, {self.c_dim}]")
            expect_shape(c, [z.shape[0], self.c_dim], "c")
            x = torch.cat([x, self.label_concat(c)], dim=1)
        if self.normalize_latents:
            x = normalize_2nd_moment(x)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        return x

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"


class LayerEpilogue(nn.Module):
    """noise → bias → activation → instance norm → style modulation (AdaIN), at one resolution."""

    def __init__(self, channels: int, w_dim: int, resolution: int, use_noise: bool = True,
                 activation: str = "lrelu"):
        super().__init__()
        self.channels, self.resolution, self.use_noise, self.activation = channels, resolution, use_noise, activation
        if use_noise:
            self.noise_weight = nn.Parameter(torch.zeros([channels]))
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
        self.bias = nn.Parameter(torch.zeros([channels]))
        self.style = EqualizedLinear(w_dim, channels * 2, gain=1)  # rows [:C] scale (minus 1), [C:] shift

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str) -> torch.Tensor:
        x = x + self.bias[None, :, None, None]
        if self.use_noise and noise_mode != "none":
            if noise_mode == "random":
                noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device)
            else:
                noise = self.noise_const[None, None]
            x = torch.addcmul(x, noise, self.noise_weight[None, :, None, None])
        x = _activate(x, self.activation)
        # Instance norm ((x − mean) · rsqrt(var + 1e-8)) and the style's scale and shift, folded into one
        # multiply-add per pixel: x · scale + (shift − mean · scale).
        var, mean = torch.var_mean(x, dim=[2, 3], keepdim=True, correction=0)
        style = self.style(w)
        scale = (var + 1e-8).rsqrt() * (style[:, :self.channels, None, None] + 1)
        return torch.addcmul(style[:, self.channels:, None, None] - mean * scale, x, scale)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, res={self.resolution}, noise={self.use_noise}"


class SynthesisLayer(nn.Module):
    """A 3×3 conv (optionally upsampling ×2, then blurred) followed by the layer epilogue; or, for the
    first layer (``in_channels`` = 0), just the epilogue on the learned constant."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False,
                 fused_scale: bool = False, blur_filter: Sequence[float] | None = (1, 2, 1),
                 use_noise: bool = True, activation: str = "lrelu"):
        super().__init__()
        self.in_channels, self.out_channels, self.resolution = in_channels, out_channels, resolution
        self.up, self.fused_scale = up, up and fused_scale
        if in_channels > 0:
            self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 3, 3]))
        _register_blur(self, blur_filter if up else None)
        self.epilogue = LayerEpilogue(out_channels, w_dim, resolution, use_noise=use_noise, activation=activation)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str) -> torch.Tensor:
        if self.in_channels > 0:
            x = self._convolve(x)
        return self.epilogue(x, w, noise_mode)

    def _convolve(self, x: torch.Tensor) -> torch.Tensor:
        weight = conv_weight(self.weight, SQRT2)
        if self.fused_scale:  # transposed conv, stride 2, with the box-summed 4×4 kernel
            x = F.conv_transpose2d(x, box_summed(weight).transpose(0, 1), stride=2, padding=1)
        else:
            if self.up:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = F.conv2d(x, weight, padding=1)
        return blur(x, self.blur_filter) if self.use_blur else x

    def extra_repr(self) -> str:
        return (f"{self.in_channels}→{self.out_channels}, res={self.resolution}, up={self.up}, "
                f"fused_scale={self.fused_scale}")


class SynthesisBlock(nn.Module):
    """One resolution: (learned constant | upsampling conv) and a conv; each reads one w."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, fused_scale: bool = False,
                 **layer_kwargs):
        super().__init__()
        self.in_channels, self.out_channels, self.resolution = in_channels, out_channels, resolution
        if in_channels == 0:
            self.const = nn.Parameter(torch.ones([out_channels, resolution, resolution]))
            self.conv0 = SynthesisLayer(0, out_channels, w_dim, resolution, **layer_kwargs)
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True,
                                        fused_scale=fused_scale, **layer_kwargs)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, **layer_kwargs)

    def forward(self, x: torch.Tensor | None, ws: torch.Tensor, noise_mode: str) -> torch.Tensor:
        """x ``[N, in, res/2, res/2]`` (None for the first block), ws ``[N, 2, w_dim]`` → ``[N, out, res, res]``."""
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        x = self.conv0(x, ws[:, 0], noise_mode)
        return self.conv1(x, ws[:, 1], noise_mode)


class SynthesisNetwork(nn.Module):
    WS_PER_BLOCK = 2  # conv0 and conv1 each read their own w

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        fmap_base: int = 8192,  # channels at resolution r: min(int(fmap_base / 2^((log2 r − 1) · decay)), max)
        fmap_decay: float = 1.0,
        fmap_max: int = 512,
        use_noise: bool = True,
        activation: str = "lrelu",
        blur_filter: Sequence[float] | None = (1, 2, 1),  # low-pass after each upsampling, None = none
        fused_scale: bool | str = "auto",  # transposed-conv upsampling; 'auto' = from 128×128 on
        progressive: bool = True,  # ToRGB at every resolution and a saved lod; False = full resolution only
    ):
        super().__init__()
        top = _log2_resolution(img_resolution)
        _check_fused_scale(fused_scale)
        _check_activation(activation)
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.progressive = bool(progressive)
        # Block k works at 2^(k+2) pixels with stage k+1 of the channel rule; the first starts from a constant.
        self.block_resolutions = [4 << k for k in range(top - 1)]
        widths = [feature_maps(k + 1, fmap_base, fmap_decay, fmap_max) for k in range(top - 1)]
        self.num_ws = self.WS_PER_BLOCK * len(widths)
        for res, c_in, c_out in zip(self.block_resolutions, [0] + widths[:-1], widths):
            block = SynthesisBlock(c_in, c_out, w_dim, res, fused_scale=_uses_fused_scale(res, fused_scale),
                                   use_noise=use_noise, activation=activation, blur_filter=blur_filter)
            self.add_module(f"b{res}", block)
        # ToRGB of level k (TF ToRGB_lod{k}) reads the block at res / 2^k: 1×1 conv, gain 1, linear.
        _register_lod(self, top - 2 if progressive else 0, progressive)
        for k in range(self.max_lod + 1):
            weight, bias = self._torgb_names(k)
            setattr(self, weight, nn.Parameter(torch.randn([img_channels, widths[-1 - k], 1, 1])))
            setattr(self, bias, nn.Parameter(torch.zeros([img_channels])))

    @staticmethod
    def _torgb_names(level: int) -> tuple[str, str]:
        """(weight, bias) attribute names of level ``level``'s ToRGB; level 0 keeps the names it always had."""
        return ("torgb_weight", "torgb_bias") if level == 0 else (f"torgb_lod{level}_weight", f"torgb_lod{level}_bias")

    def blocks(self) -> Iterator[SynthesisBlock]:
        """The blocks from 4×4 up to the output resolution."""
        return (getattr(self, f"b{res}") for res in self.block_resolutions)

    def torgb(self, x: torch.Tensor, level: int) -> torch.Tensor:
        """Level ``level``'s ToRGB: ``[N, C, r, r]`` features of the block at ``res / 2^level`` → ``[N, img_channels, r, r]``."""
        weight, bias = (getattr(self, name) for name in self._torgb_names(level))
        return F.conv2d(x, conv_weight(weight, 1.0), bias)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", **_ignored: Any) -> torch.Tensor:
        """ws ``[N, num_ws, w_dim]`` → image ``[N, img_channels, res, res]`` (float32, about [-1, 1]).

        At ``lod = L + f`` (the ``lod`` buffer) the blocks up to ``res / 2^L`` run; that block's ToRGB output
        is blended with the nearest-upsampled ToRGB output of the block below by f, and the result is
        nearest-upsampled to full size. ws of blocks that do not run are not read.
        Options of the StyleGAN2 synthesis that do not apply here (``force_fp32``, ``fused_modconv``)
        are accepted and ignored: this network always computes in float32.
        """
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        expect_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        level, fade = lod_parts(current_lod(self))
        num_blocks = len(self.block_resolutions) - level
        x = below = None
        for i, block, block_ws in zip(range(num_blocks), self.blocks(), ws.to(torch.float32).split(self.WS_PER_BLOCK, dim=1)):
            if i == num_blocks - 1 and fade > 0:
                below = x
            x = block(x, block_ws, noise_mode)
        img = self.torgb(x, level)
        if below is not None:  # the new block still fading in over the upsampled one below
            img = torch.lerp(img, upscale_nearest(self.torgb(below, level + 1), 2), fade)
        return upscale_nearest(img, 1 << level)

    def extra_repr(self) -> str:
        lod = f", lod={float(self.lod):g}" if self.lod.device.type != "meta" and float(self.lod) != 0 else ""
        return (f"w_dim={self.w_dim}, resolution={self.img_resolution}, channels={self.img_channels}, "
                f"num_ws={self.num_ws}, progressive={self.progressive}{lod}")


def _generator_record(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The generator's init_kwargs as stored: sub-network options always as dicts (None → {})."""
    for key in ("mapping_kwargs", "synthesis_kwargs"):
        kwargs[key] = kwargs[key] or {}
    return kwargs


class StyleGAN1Generator(nn.Module):
    """StyleGAN (v1) ``G_style``: mapping + synthesis, with the StyleGAN2 generator's calling convention.

    Truncation: v1's TF graph truncates by default (ψ 0.7 on the first 8 ws). Here, as for every network
    in this package (and as the official PyTorch converter does with StyleGAN2's TF default of ψ 0.5),
    ``G(z, c)`` does not truncate: ψ defaults to 1, so metrics and training-style sampling see the raw
    distribution (v1's own metrics also ran untruncated). v1's values are kept as
    ``default_truncation_psi`` / ``default_truncation_cutoff`` (from the file when it sets them), and
    the cutoff is where they show: when ψ is given and the cutoff is left out, only the first
    ``default_truncation_cutoff`` ws are truncated, as in v1; ``truncation_cutoff=None`` means every w.
    So ``G(z, c, truncation_psi=G.default_truncation_psi)`` gives v1's default images.
    """

    class_name = "StyleGAN1Generator"
    record_defaults = RECORD_DEFAULTS  # what a saved record without ``progressive`` meant

    @records_init_kwargs(normalize=_generator_record)
    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: dict | None = None,  # MappingNetwork options: num_layers, layer_features, lr_multiplier, ...
        synthesis_kwargs: dict | None = None,  # SynthesisNetwork options: fmap_base, fmap_max, blur_filter, ...
        truncation_psi: float = 0.7,  # v1's default ψ, recorded (G(z, c) itself does not truncate)
        truncation_cutoff: int | None = 8,  # v1's default cutoff: used when ψ is given without a cutoff
        progressive: bool = True,  # ToRGB at every resolution and a saved lod (see SynthesisNetwork)
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.default_truncation_psi, self.default_truncation_cutoff = truncation_psi, truncation_cutoff
        # The synthesis network decides how many ws there are; the mapping network repeats w that often.
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, progressive=progressive,
                                          **(synthesis_kwargs or {}))
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.synthesis.num_ws, **(mapping_kwargs or {}))
        self.mapping.default_truncation_cutoff = truncation_cutoff

    @property
    def num_ws(self) -> int:
        return self.synthesis.num_ws

    @property
    def lod(self) -> float:
        """The level of detail the synthesis network draws at (0 = full resolution); set it through
        ``G.synthesis.lod.fill_(value)``."""
        return float(self.synthesis.lod)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = DEFAULT, skip_w_avg_update: bool = False,
                update_emas: bool | None = None, **synthesis_kwargs: Any) -> torch.Tensor:
        """z ``[N, z_dim]``, c ``[N, c_dim]`` → images ``[N, img_channels, res, res]`` in about [-1, 1].

        ψ 1 (the default) = no truncation; a left-out cutoff is v1's (8, or the file's); None = every w.
        """
        psi = 1 if truncation_psi is None else truncation_psi  # the TF code's None = no truncation
        ws = self.mapping(z, c, truncation_psi=psi, truncation_cutoff=truncation_cutoff,
                          skip_w_avg_update=skip_w_avg_update, update_emas=update_emas)
        return self.synthesis(ws, **synthesis_kwargs)

    def extra_repr(self) -> str:
        return (f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, resolution={self.img_resolution}, "
                f"truncation=(psi {self.default_truncation_psi}, cutoff {self.default_truncation_cutoff})")


# --------------------------------------------------------------------------------------------------
# Discriminator (D_basic)


class DiscriminatorBlock(nn.Module):
    """conv 3×3 → blur → conv 3×3 with 2× downscaling (average pool, or fused strided conv from 128²)."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, fused_scale: bool,
                 blur_filter: Sequence[float] | None = (1, 2, 1), activation: str = "lrelu"):
        super().__init__()
        self.resolution, self.fused_scale, self.activation = resolution, fused_scale, activation
        self.conv0_weight = nn.Parameter(torch.randn([in_channels, in_channels, 3, 3]))
        self.conv0_bias = nn.Parameter(torch.zeros([in_channels]))
        self.conv1_weight = nn.Parameter(torch.randn([out_channels, in_channels, 3, 3]))
        self.conv1_bias = nn.Parameter(torch.zeros([out_channels]))
        _register_blur(self, blur_filter)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _activate(F.conv2d(x, conv_weight(self.conv0_weight, SQRT2), self.conv0_bias, padding=1),
                      self.activation)
        if self.use_blur:
            x = blur(x, self.blur_filter)
        return _activate(self._downscale(x), self.activation)

    def _downscale(self, x: torch.Tensor) -> torch.Tensor:
        """conv1 and the 2× reduction, bias added: ``[N, in, r, r]`` → ``[N, out, r/2, r/2]``."""
        weight = conv_weight(self.conv1_weight, SQRT2)
        if self.fused_scale:  # strided conv with the box-summed kernel / 4 = conv then 2×2 average, in one pass
            return F.conv2d(x, box_summed(weight) * 0.25, self.conv1_bias, stride=2, padding=1)
        return F.avg_pool2d(F.conv2d(x, weight, padding=1), 2) + self.conv1_bias[None, :, None, None]


def _discriminator_record(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The discriminator's init_kwargs as stored: no blur (None or no taps) always as None."""
    kwargs["blur_filter"] = kwargs["blur_filter"] or None
    return kwargs


class StyleGAN1Discriminator(nn.Module):
    """StyleGAN (v1) ``D_basic``: FromRGB, conv/blur/conv-down blocks, minibatch std, conv, two dense layers.

    Conditional: one score per label, picked by the label: ``sum(out · c, dim=1)``.
    """

    class_name = "StyleGAN1Discriminator"
    record_defaults = RECORD_DEFAULTS  # what a saved record without ``progressive`` meant

    @records_init_kwargs(normalize=_discriminator_record)
    def __init__(
        self,
        c_dim: int,
        img_resolution: int,
        img_channels: int,
        fmap_base: int = 8192,
        fmap_decay: float = 1.0,
        fmap_max: int = 512,
        activation: str = "lrelu",
        mbstd_group_size: int = 4,  # ≤ 1 = no minibatch std
        mbstd_num_channels: int = 1,
        blur_filter: Sequence[float] | None = (1, 2, 1),
        fused_scale: bool | str = "auto",  # strided-conv downscaling; 'auto' = at inputs of 128×128 and up
        progressive: bool = True,  # FromRGB at every resolution and a saved lod; False = full resolution only
    ):
        super().__init__()
        top = _log2_resolution(img_resolution)
        _check_fused_scale(fused_scale)
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.activation = _check_activation(activation)
        self.progressive = bool(progressive)
        # widths[s] = channels of channel-rule stage s; the block at 2^r pixels maps stage r−1 to r−2.
        widths = [feature_maps(stage, fmap_base, fmap_decay, fmap_max) for stage in range(top)]
        self.block_resolutions = [1 << r for r in range(top, 2, -1)]

        # FromRGB of level k (TF FromRGB_lod{k}) feeds the block at res / 2^k (k = log2(res) − 2: the 4×4 layers).
        _register_lod(self, top - 2 if progressive else 0, progressive)
        for k in range(self.max_lod + 1):
            weight, bias = self._fromrgb_names(k)
            setattr(self, weight, nn.Parameter(torch.randn([widths[top - 1 - k], img_channels, 1, 1])))
            setattr(self, bias, nn.Parameter(torch.zeros([widths[top - 1 - k]])))
        for r in range(top, 2, -1):
            block = DiscriminatorBlock(widths[r - 1], widths[r - 2], 1 << r, _uses_fused_scale(1 << r, fused_scale),
                                       blur_filter, activation)
            self.add_module(f"b{1 << r}", block)
        use_mbstd = mbstd_group_size > 1
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if use_mbstd else None
        stat_channels = mbstd_num_channels if use_mbstd else 0
        self.conv_weight = nn.Parameter(torch.randn([widths[1], widths[1] + stat_channels, 3, 3]))
        self.conv_bias = nn.Parameter(torch.zeros([widths[1]]))
        self.fc = EqualizedLinear(widths[1] * 16, widths[0], gain=SQRT2, activation=activation)
        self.out = EqualizedLinear(widths[0], max(c_dim, 1), gain=1)

    @staticmethod
    def _fromrgb_names(level: int) -> tuple[str, str]:
        """(weight, bias) attribute names of level ``level``'s FromRGB; level 0 keeps the names it always had."""
        if level == 0:
            return "fromrgb_weight", "fromrgb_bias"
        return f"fromrgb_lod{level}_weight", f"fromrgb_lod{level}_bias"

    def blocks(self) -> Iterator[DiscriminatorBlock]:
        """The downscaling blocks, from the input resolution down to 8×8."""
        return (getattr(self, f"b{res}") for res in self.block_resolutions)

    def fromrgb(self, img: torch.Tensor, level: int) -> torch.Tensor:
        """Level ``level``'s FromRGB on the input averaged down by 2^level: ``[N, C, res, res]`` →
        ``[N, ch, res / 2^level, res / 2^level]``."""
        weight, bias = (getattr(self, name) for name in self._fromrgb_names(level))
        return _activate(F.conv2d(downscale_box(img, 1 << level), conv_weight(weight, SQRT2), bias), self.activation)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, **_ignored: Any) -> torch.Tensor:
        """img ``[N, C, res, res]`` in about [-1, 1], c ``[N, c_dim]`` → logits ``[N, 1]``.

        The input is always full size; at ``lod`` ≠ 0 it is read at the resolutions the generator draws.
        """
        expect_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], "img")
        x = self._features_4x4(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = _activate(F.conv2d(x, conv_weight(self.conv_weight, SQRT2), self.conv_bias, padding=1), self.activation)
        return self._score(self.out(self.fc(x)), c)

    def _features_4x4(self, img: torch.Tensor) -> torch.Tensor:
        """FromRGB and the downscaling blocks: ``[N, C, res, res]`` → ``[N, ch, 4, 4]``.

        At ``lod = L + f`` the input enters through level L's FromRGB; after that level's block, the
        output is blended with level L + 1's FromRGB of the input averaged down by 2^(L+1), by f (the
        mirror of the generator's fade-in). Finer blocks do not run.
        """
        level, fade = lod_parts(current_lod(self))
        x = self.fromrgb(img, level)
        for block in list(self.blocks())[level:]:
            x = block(x)
            if fade > 0:  # only right after level L's block: the next levels have weight 0
                x = torch.lerp(x, self.fromrgb(img, level + 1), fade)
                fade = 0.0
        return x

    def _score(self, out: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """``[N, max(c_dim, 1)]`` → ``[N, 1]``: the output itself, or for labels the score of each sample's class."""
        if self.c_dim == 0:
            return out
        if c is None:
            raise ValueError(f"this discriminator is conditional: pass c of shape [N, {self.c_dim}]")
        expect_shape(c, [out.shape[0], self.c_dim], "c")
        return (out * c.to(out.dtype)).sum(dim=1, keepdim=True)

    def extra_repr(self) -> str:
        lod = f", lod={float(self.lod):g}" if self.lod.device.type != "meta" and float(self.lod) != 0 else ""
        return (f"c_dim={self.c_dim}, resolution={self.img_resolution}, channels={self.img_channels}, "
                f"progressive={self.progressive}{lod}")


__all__ = ["StyleGAN1Generator", "StyleGAN1Discriminator", "MappingNetwork", "SynthesisNetwork", "DEFAULT",
           "feature_maps", "RECORD_DEFAULTS", "lod_problem", "lod_parts", "describe_lod"]
