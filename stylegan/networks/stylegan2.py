"""StyleGAN2 generator and discriminator (Karras et al. 2020), as configured by StyleGAN2-ADA.

Constructor arguments, module/parameter names and arithmetic match the official stylegan2-ada-pytorch
networks, so official weights load unchanged and give the same outputs. Only the scheduling differs
(fp16 only on CUDA, where it pays off; exact fp32 everywhere else).

How the pieces are laid out here:

- per-resolution tables (block resolutions, channel counts, fp16 cut-off) are computed once by small
  functions, and the networks build their blocks from them;
- the synthesis network precomputes which slice of ``ws`` each block reads (``w_spans``);
- truncation, w_avg tracking and broadcasting w to every layer are helpers in ``layers``.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from stylegan.networks.init_record import records_init_kwargs
from stylegan.networks.layers import (
    NOISE_MODES,
    Conv2dLayer,
    FullyConnectedLayer,
    MinibatchStdLayer,
    broadcast_w,
    expect_shape,
    normalize_2nd_moment,
    track_w_avg,
    truncate,
    w_avg_update_wanted,
)
from stylegan.ops import ACTIVATIONS, downsample2d, make_filter, modulated_conv2d, upsample2d
from stylegan.precision import active_dtype

ARCHITECTURES = ("orig", "skip", "resnet")
RESNET_BRANCH_GAIN = math.sqrt(0.5)  # both branches of a residual block, so their sum keeps unit variance


# --------------------------------------------------------------------------------------------------
# Per-resolution tables


def resolution_log2(img_resolution: int, lowest: int = 4) -> int:
    """log2 of a power-of-two resolution in [lowest, 16384]; ValueError otherwise."""
    is_power_of_two = img_resolution > 0 and img_resolution & (img_resolution - 1) == 0
    if not (is_power_of_two and lowest <= img_resolution <= 2**14):
        raise ValueError(f"img_resolution must be a power of two >= {lowest}, got {img_resolution}")
    return int(math.log2(img_resolution))


def channel_table(resolutions: Sequence[int], channel_base: int, channel_max: int) -> dict[int, int]:
    """Feature maps per resolution: ``channel_base / res`` (halving per octave up), capped at channel_max."""
    return {res: min(channel_base // res, channel_max) for res in resolutions}


def fp16_lowest_resolution(log2_res: int, num_fp16_res: int) -> int:
    """Blocks at this resolution and above are marked fp16: the top ``num_fp16_res`` ones, never below 8×8."""
    return max(8, 2 ** (log2_res + 1 - num_fp16_res))


# --------------------------------------------------------------------------------------------------
# Scheduling (which dtype, memory layout and modulated-conv path a block uses on a device)

# fp16-marked blocks compute in fp16 only on CUDA, where it pays off and where the official figures were
# made; the CPU and MPS compute the exact fp32 arithmetic. The CPU also keeps activations NHWC and scales
# them around one shared convolution instead of grouping a convolution per sample. Tests map "cpu" to
# "cuda" here to run the GPU schedule (all but the GPU's kernels) on machines without one.
SCHEDULE_AS: dict[str, str] = {}


def scheduled_device_type(t: torch.Tensor) -> str:
    """The device type whose schedule the work on ``t`` follows: its own, unless SCHEDULE_AS maps it."""
    return SCHEDULE_AS.get(t.device.type, t.device.type)


def _compute_dtype(use_fp16: bool, x: torch.Tensor, force_fp32: bool) -> torch.dtype:
    if use_fp16 and not force_fp32 and scheduled_device_type(x) == "cuda":
        return torch.float16
    return torch.float32


def _synthesis_dtype(use_fp16: bool, x: torch.Tensor, force_fp32: bool) -> torch.dtype:
    """A synthesis block's compute dtype: bf16 for every block inside ``inference_precision('bf16')``,
    else as :func:`_compute_dtype` (``force_fp32`` wins over both)."""
    if not force_fp32 and active_dtype() is torch.bfloat16:
        return torch.bfloat16
    return _compute_dtype(use_fp16, x, force_fp32)


def _use_fused_modconv(fused: bool | None, training: bool, dtype: torch.dtype, x: torch.Tensor,
                       default: bool | str | None = None) -> bool:
    if fused is not None:
        return fused
    if training or scheduled_device_type(x) == "cpu":
        # Scaling activations around one shared convolution differentiates cleanly and lets the CPU
        # convolution kernels batch over samples; grouped convolution is the faster choice on GPUs.
        return False
    if default is not None:  # the stylegan3 repo's setting: True, False or 'inference_only'
        return default == "inference_only" or bool(default)
    return dtype == torch.float32 or x.shape[0] == 1


def _memory_format(fp16_channels_last: bool, dtype: torch.dtype, x: torch.Tensor) -> torch.memory_format:
    # oneDNN's CPU convolutions (dense, transposed and depthwise) run markedly faster on NHWC tensors.
    if scheduled_device_type(x) == "cpu" or (fp16_channels_last and dtype == torch.float16):
        return torch.channels_last
    return torch.contiguous_format


def _has_forward_hooks(*modules: nn.Module | None) -> bool:
    """Whether a forward hook (on these modules or global) might keep references to their outputs."""
    from torch.nn.modules import module as module_impl  # global hooks live there

    if getattr(module_impl, "_global_forward_hooks", None):
        return True
    return any(m is not None and (m._forward_hooks or getattr(m, "_forward_hooks_with_kwargs", None))
               for m in modules)


def _fp32_nchw(t: torch.Tensor) -> torch.Tensor:
    """``t`` as float32 in the default (NCHW) layout: what leaves a block that may run fp16/NHWC."""
    return t.to(dtype=torch.float32, memory_format=torch.contiguous_format)


# --------------------------------------------------------------------------------------------------
# Shared constructors


def _style_affine(w_dim: int, channels: int) -> FullyConnectedLayer:
    """w → one style per input channel; the bias starts at 1 so styles start as identity scales."""
    return FullyConnectedLayer(w_dim, channels, bias_init=1)


def _conv_weight(out_channels: int, in_channels: int, kernel: int, channels_last: bool) -> nn.Parameter:
    """A unit-variance ``[out, in, k, k]`` kernel (equalised lr), NHWC-strided when asked."""
    weight = torch.randn([out_channels, in_channels, kernel, kernel])
    if channels_last:
        weight = weight.to(memory_format=torch.channels_last)
    return nn.Parameter(weight)


def _resampling_shortcut(in_channels: int, out_channels: int, resample_filter: Sequence[float],
                         channels_last: bool, *, up: int = 1, down: int = 1,
                         trainable: bool = True) -> Conv2dLayer:
    """The residual branch of a resnet block: a bias-free 1×1 convolution with ×2 resampling."""
    return Conv2dLayer(in_channels, out_channels, 1, bias=False, up=up, down=down, trainable=trainable,
                       resample_filter=resample_filter, channels_last=channels_last)


def _check_architecture(architecture: str) -> None:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")


# --------------------------------------------------------------------------------------------------
# Generator: mapping


class MappingNetwork(nn.Module):
    """z (and label) → w: 2nd-moment-normalised inputs through ``num_layers`` fully connected layers."""

    def __init__(
        self,
        z_dim: int,  # latent Z size, 0 = none (D's label mapping)
        c_dim: int,  # conditioning label size, 0 = unconditional
        w_dim: int,  # intermediate latent W size
        num_ws: int | None,  # how many copies of w to output, None = one w per sample [N, w_dim]
        num_layers: int = 8,
        embed_features: int | None = None,  # label embedding size, None = w_dim
        layer_features: int | None = None,  # hidden width, None = w_dim
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,  # decay of the running mean of W, None = no tracking
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        label_width = 0
        if c_dim > 0:
            label_width = w_dim if embed_features is None else embed_features
            self.embed = FullyConnectedLayer(c_dim, label_width)
        hidden = w_dim if layer_features is None else layer_features
        # The first layer reads the concatenated inputs, the last one writes w, the rest stay `hidden` wide.
        # D's label mapping may have no layers at all (then it outputs the embedded label itself).
        for index in range(num_layers):
            fan_in = z_dim + label_width if index == 0 else hidden
            fan_out = w_dim if index == num_layers - 1 else hidden
            layer = FullyConnectedLayer(fan_in, fan_out, activation=activation, lr_multiplier=lr_multiplier)
            self.add_module(f"fc{index}", layer)
        if self._keeps_w_avg():
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def _keeps_w_avg(self) -> bool:
        # D's label mapping (num_ws None) and mappings built without a decay have no average to keep.
        return self.num_ws is not None and self.w_avg_beta is not None

    def layers(self) -> Iterator[FullyConnectedLayer]:
        return (getattr(self, f"fc{index}") for index in range(self.num_layers))

    def _normalized_inputs(self, z: torch.Tensor | None, c: torch.Tensor | None) -> torch.Tensor:
        """``[norm(z), norm(embed(c))]`` ``[N, z_dim + embed_features]`` (either part absent when its dim is 0)."""
        parts = []
        if self.z_dim > 0:
            expect_shape(z, [None, self.z_dim], "z")
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this network is conditional: pass c of shape [N, {self.c_dim}]")
            expect_shape(c, [None, self.c_dim], "c")
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        skip_w_avg_update: bool = False,
        update_emas: bool | None = None,  # the stylegan3 repository's name; see w_avg_update_wanted
    ) -> torch.Tensor:
        """z ``[N, z_dim]``, c ``[N, c_dim]`` (one-hot or soft labels) → ws ``[N, num_ws, w_dim]``.

        With ``num_ws`` None the result is one w per sample, ``[N, w_dim]``.
        """
        w = self._normalized_inputs(z, c)
        for layer in self.layers():
            w = layer(w)
        if self._keeps_w_avg() and w_avg_update_wanted(self.training, skip_w_avg_update, update_emas):
            track_w_avg(self.w_avg, w, self.w_avg_beta)
        ws = w if self.num_ws is None else broadcast_w(w, self.num_ws)
        if truncation_psi == 1:
            return ws
        if not self._keeps_w_avg():
            raise ValueError("truncation needs w_avg, which this mapping network does not track")
        # A single w per sample has no layers to cut off: it is truncated as a whole.
        return truncate(ws, self.w_avg, truncation_psi, None if self.num_ws is None else truncation_cutoff)

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"


# --------------------------------------------------------------------------------------------------
# Generator: synthesis


class SynthesisLayer(nn.Module):
    """Modulated 3×3 convolution (optionally upsampling ×2) + noise + bias + activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,  # output resolution
        kernel_size: int = 3,
        up: int = 1,  # 2 = transposed convolution to twice the input size, FIR-filtered
        use_noise: bool = True,  # per-pixel noise, scaled by a learned strength
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,  # clamp outputs to ±conv_clamp (keeps fp16 finite)
        channels_last: bool = False,
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.padding, self.act_gain = kernel_size // 2, ACTIVATIONS[activation].default_gain
        # Registration order fixes the state-dict order (and which random numbers each tensor draws).
        self.register_buffer("resample_filter", make_filter(list(resample_filter)))
        self.affine = _style_affine(w_dim, in_channels)
        self.weight = _conv_weight(out_channels, in_channels, kernel_size, channels_last)
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def _noise(self, batch: int, device: torch.device, noise_mode: str) -> torch.Tensor | None:
        """Noise to add, already scaled: ``[res, res]`` (const) or ``[batch, 1, res, res]`` (random)."""
        if not self.use_noise or noise_mode == "none":
            return None
        if noise_mode == "const":
            pattern = self.noise_const
        else:
            pattern = torch.randn([batch, 1, self.resolution, self.resolution], device=device)
        return pattern * self.noise_strength

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", fused_modconv: bool = True,
                gain: float = 1, overwrite_input: bool = False) -> torch.Tensor:
        """x ``[N, in_channels, res/up, res/up]``, w ``[N, w_dim]`` → ``[N, out_channels, res, res]``.

        ``overwrite_input`` allows scaling x in place (inference only), for inputs nobody else reads.
        """
        size_in = self.resolution // self.up
        expect_shape(x, [None, self.in_channels, size_in, size_in], "synthesis layer input")
        styles = self.affine(w)
        # conv_clamp is scaled by the same gain as the activations (the resnet branch uses √½).
        return modulated_conv2d(x, self.weight, styles, noise=self._noise(x.shape[0], x.device, noise_mode),
                                up=self.up, padding=self.padding, resample_filter=self.resample_filter,
                                flip_weight=(self.up == 1), fused=fused_modconv, bias=self.bias,
                                act=self.activation, gain=gain, clamp=self.conv_clamp,
                                overwrite_input=overwrite_input)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}→{self.out_channels}, res={self.resolution}, up={self.up}, "
                f"noise={self.use_noise}, clamp={self.conv_clamp}")


class ToRGBLayer(nn.Module):
    """Modulated 1×1 convolution to image channels, without demodulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None, channels_last: bool = False):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = _style_affine(w_dim, in_channels)
        self.weight = _conv_weight(out_channels, in_channels, kernel_size, channels_last)
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        """x ``[N, in_channels, H, W]``, w ``[N, w_dim]`` → ``[N, out_channels, H, W]`` (linear)."""
        # The equalised-lr gain goes on the styles, not the weights (same product, official order).
        styles = self.affine(w, gain=self.weight_gain)
        return modulated_conv2d(x, self.weight, styles, demodulate=False, fused=fused_modconv,
                                bias=self.bias, act="linear", clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: (const | up-conv) + conv, plus ToRGB / skip."""

    def __init__(
        self,
        in_channels: int,  # 0 = first block (starts from the learned constant)
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        fused_modconv_default: bool | str | None = None,  # stylegan3 repo: True/False/'inference_only'
        **layer_kwargs,
    ):
        _check_architecture(architecture)
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.resolution, self.img_channels, self.is_last = resolution, img_channels, is_last
        self.architecture, self.use_fp16 = architecture, use_fp16
        # fused_modconv_default is only a scheduling choice (both modconv paths compute the same); it is
        # used on GPUs when the caller does not say.
        self.channels_last, self.fused_modconv_default = use_fp16 and fp16_channels_last, fused_modconv_default
        is_first = in_channels == 0
        makes_rgb = is_last or architecture == "skip"
        self.num_conv, self.num_torgb = (1 if is_first else 2), int(makes_rgb)

        self.register_buffer("resample_filter", make_filter(list(resample_filter)))
        shared = dict(w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp,
                      channels_last=self.channels_last, **layer_kwargs)
        if is_first:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, resample_filter=resample_filter, **shared)
        # conv1 never resamples; like the official block it keeps the default filter buffer, so files
        # made with a custom resample_filter still have [4, 4] here.
        self.conv1 = SynthesisLayer(out_channels, out_channels, **shared)
        if makes_rgb:
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp,
                                    channels_last=self.channels_last)
        if not is_first and architecture == "resnet":
            self.skip = _resampling_shortcut(in_channels, out_channels, resample_filter, self.channels_last, up=2)

    def _starting_features(self, batch: int, dtype: torch.dtype, fmt: torch.memory_format) -> torch.Tensor:
        """The learned constant for every sample, ``[batch, out_channels, 4, 4]``: a fresh tensor."""
        return self.const.to(dtype=dtype)[None].repeat(batch, 1, 1, 1).contiguous(memory_format=fmt)

    def _features(self, x: torch.Tensor | None, ws: torch.Tensor, dtype: torch.dtype, fmt: torch.memory_format,
                  conv_args: dict[str, Any], overwrite_input: bool) -> torch.Tensor:
        """The block's convolutions: ws ``[N, num_conv(+1), w_dim]``, conv i reading ``ws[:, i]``."""
        if self.in_channels == 0:  # the first block ignores x (None) and starts from its constant
            start = self._starting_features(ws.shape[0], dtype, fmt)
            return self.conv1(start, ws[:, 0], overwrite_input=True, **conv_args)
        # conv1 reads conv0's fresh output, so it may scale it in place, unless a hook on conv0 could
        # still be holding on to that output.
        conv1_may_overwrite = not _has_forward_hooks(self.conv0)
        x = x.to(dtype=dtype, memory_format=fmt)
        if self.architecture != "resnet":
            hidden = self.conv0(x, ws[:, 0], overwrite_input=overwrite_input, **conv_args)
            return self.conv1(hidden, ws[:, 1], overwrite_input=conv1_may_overwrite, **conv_args)
        # The shortcut reads x before conv0 may overwrite it.
        shortcut = self.skip(x, gain=RESNET_BRANCH_GAIN)
        hidden = self.conv0(x, ws[:, 0], overwrite_input=overwrite_input, **conv_args)
        return shortcut + self.conv1(hidden, ws[:, 1], gain=RESNET_BRANCH_GAIN,
                                     overwrite_input=conv1_may_overwrite, **conv_args)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                force_fp32: bool = False, fused_modconv: bool | None = None, noise_mode: str = "random",
                overwrite_input: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x ``[N, in_channels, res/2, res/2]`` (None for the first block), img ``[N, C, res/2, res/2]`` or None,
        ws ``[N, num_conv + num_torgb, w_dim]`` → (x ``[N, out_channels, res, res]``, img ``[N, C, res, res]``).

        ``overwrite_input`` lets the first conv scale x in place (inference only): for the synthesis
        network's own intermediate tensors, which nothing reads afterwards.
        """
        expect_shape(ws, [None, self.num_conv + self.num_torgb, self.w_dim], "block ws")
        on = ws if x is None else x  # the tensor whose device decides the schedule
        dtype = _synthesis_dtype(self.use_fp16, on, force_fp32)
        fused = _use_fused_modconv(fused_modconv, self.training, dtype, on, self.fused_modconv_default)
        fmt = _memory_format(self.channels_last, dtype, on)
        x = self._features(x, ws, dtype, fmt, dict(fused_modconv=fused, noise_mode=noise_mode), overwrite_input)

        if img is not None:
            # The skip image is kept NCHW between blocks, but its upsampling (a depthwise transposed
            # convolution) runs 10× faster in NHWC on the CPU; the sum with rgb below returns to NCHW.
            img = upsample2d(img.contiguous(memory_format=fmt), self.resample_filter)
        if self.num_torgb:
            # In bf16 the ToRGB reads float32 features: its 3-channel output is the image itself, and the
            # 1×1 convolution is a small share of the work.
            features = x.float() if dtype is torch.bfloat16 else x
            rgb = _fp32_nchw(self.torgb(features, ws[:, self.num_conv], fused_modconv=fused))
            img = rgb if img is None else rgb + img  # rgb first: the sum takes its (NCHW) layout
        return x, img

    def extra_repr(self) -> str:
        return f"res={self.resolution}, arch={self.architecture}, fp16={self.use_fp16}"


def block_w_spans(blocks: Sequence[SynthesisBlock]) -> list[tuple[int, int]]:
    """(first index, count) of the ws each block reads, in order.

    Block k's convolutions read consecutive ws; its ToRGB reads the w that follows them, which is also
    the one the next block's first convolution reads. So the spans overlap by one where there is a ToRGB.
    """
    spans, first = [], 0
    for block in blocks:
        spans.append((first, block.num_conv + block.num_torgb))
        first += block.num_conv
    return spans


class SynthesisNetwork(nn.Module):
    """ws → image: one SynthesisBlock per resolution from 4×4 up to ``img_resolution``."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,  # channels at resolution r are min(channel_base / r, channel_max)
        channel_max: int = 512,
        num_fp16_res: int = 0,  # the N highest resolutions run in fp16 (on CUDA)
        **block_kwargs,  # architecture, resample_filter, conv_clamp, fp16_channels_last, use_noise, ...
    ):
        super().__init__()
        log2 = resolution_log2(img_resolution)
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        widths = channel_table(self.block_resolutions, channel_base, channel_max)
        fp16_from = fp16_lowest_resolution(log2, num_fp16_res)
        for res, out_channels in widths.items():
            in_channels = widths.get(res // 2, 0)  # 0 at 4×4: the block starts from its constant
            self.add_module(f"b{res}", SynthesisBlock(
                in_channels, out_channels, w_dim=w_dim, resolution=res, img_channels=img_channels,
                is_last=(res == img_resolution), use_fp16=(res >= fp16_from), **block_kwargs))
        self.w_spans = block_w_spans(self.blocks())
        first, count = self.w_spans[-1]
        self.num_ws = first + count

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", force_fp32: bool = False,
                fused_modconv: bool | None = None, update_emas: bool = False) -> torch.Tensor:
        """ws ``[N, num_ws, w_dim]`` → image ``[N, img_channels, res, res]`` (float32, about [-1, 1])."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        expect_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        ws = ws.to(torch.float32)
        x = img = None
        previous = None
        for block, (first, count) in zip(self.blocks(), self.w_spans):
            # The previous block's output is ours and already used by its ToRGB: the next block may
            # overwrite it, unless a forward hook may have kept a reference to it.
            ours = previous is not None and not _has_forward_hooks(previous, previous.conv1)
            x, img = block(x, img, ws.narrow(1, first, count), force_fp32=force_fp32,
                           fused_modconv=fused_modconv, noise_mode=noise_mode, overwrite_input=ours)
            previous = block
        return img

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, resolution={self.img_resolution}, channels={self.img_channels}, "
                f"num_ws={self.num_ws}")


# --------------------------------------------------------------------------------------------------
# Generator


_GENERATOR_ARGUMENTS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs",
                        "synthesis_kwargs")


def generator_record(arguments: dict[str, Any]) -> dict[str, Any]:
    """A generator's stored kwargs: the ADA repository's nested form.

    Synthesis options passed loose (as the stylegan3 repository does) are folded into
    ``synthesis_kwargs``; absent option dicts are stored as empty ones.
    """
    loose = {name: value for name, value in arguments.items() if name not in _GENERATOR_ARGUMENTS}
    record = {name: arguments[name] for name in _GENERATOR_ARGUMENTS}
    record["mapping_kwargs"] = record["mapping_kwargs"] or {}
    record["synthesis_kwargs"] = {**(record["synthesis_kwargs"] or {}), **loose}
    return record


class Generator(nn.Module):
    """z, c → image: ``synthesis(mapping(z, c))``."""

    class_name = "Generator"

    @records_init_kwargs(normalize=generator_record)
    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: dict | None = None,  # MappingNetwork options: num_layers, lr_multiplier, ...
        synthesis_kwargs: dict | None = None,  # SynthesisNetwork options: channel_base, architecture, ...
        **more_synthesis_kwargs,  # the stylegan3 repo passes synthesis options flat
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        # The synthesis network decides how many ws there are; the mapping network is sized after it.
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels,
                                          **{**(synthesis_kwargs or {}), **more_synthesis_kwargs})
        ws_needed = self.synthesis.num_ws
        self.num_ws = ws_needed
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, ws_needed, **(mapping_kwargs or {}))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, skip_w_avg_update: bool = False,
                update_emas: bool | None = None, **synthesis_kwargs) -> torch.Tensor:
        """z ``[N, z_dim]``, c ``[N, c_dim]`` → images ``[N, img_channels, res, res]`` in about [-1, 1]."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          skip_w_avg_update=skip_w_avg_update, update_emas=update_emas)
        return self.synthesis(ws, **synthesis_kwargs)


# --------------------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorBlock(nn.Module):
    """One resolution of D: (fromrgb) + conv + down-conv, with a resnet shortcut or an image skip."""

    def __init__(
        self,
        in_channels: int,  # 0 = first block (reads the image through fromrgb)
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        first_layer_idx: int,  # index of this block's first layer, for Freeze-D
        architecture: str = "resnet",
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        freeze_layers: int = 0,  # the first N layers of D are frozen (transfer learning)
    ):
        if in_channels not in (0, tmp_channels):
            raise ValueError("a discriminator block's in_channels must be 0 or tmp_channels")
        _check_architecture(architecture)
        super().__init__()
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, img_channels
        self.first_layer_idx, self.architecture, self.use_fp16 = first_layer_idx, architecture, use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", make_filter(list(resample_filter)))
        reads_rgb, has_shortcut = self._reads_image(), architecture == "resnet"
        # Layers in creation order: [fromrgb], conv0, conv1, [skip]; Freeze-D counts them across blocks.
        self.num_layers = int(reads_rgb) + 2 + int(has_shortcut)
        frozen = iter(first_layer_idx + i < freeze_layers for i in range(self.num_layers))

        conv = dict(activation=activation, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if reads_rgb:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, trainable=not next(frozen), **conv)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, trainable=not next(frozen), **conv)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, down=2, trainable=not next(frozen),
                                 resample_filter=resample_filter, **conv)
        if has_shortcut:
            self.skip = _resampling_shortcut(tmp_channels, out_channels, resample_filter, self.channels_last,
                                             down=2, trainable=not next(frozen))

    def _reads_image(self) -> bool:
        """The first block reads the image; with the skip architecture every block does."""
        return self.in_channels == 0 or self.architecture == "skip"

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None,
                force_fp32: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x ``[N, tmp, res, res]`` (None in the first block), img ``[N, C, res, res]`` or None
        → (x ``[N, out, res/2, res/2]``, the image downsampled for the next block or None)."""
        on = img if x is None else x
        dtype = _compute_dtype(self.use_fp16, on, force_fp32)
        fmt = _memory_format(self.channels_last, dtype, on)
        if x is not None:
            x = x.to(dtype=dtype, memory_format=fmt)
        if self._reads_image():
            img = img.to(dtype=dtype, memory_format=fmt)
            from_image = self.fromrgb(img)
            x = from_image if x is None else x + from_image
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture != "resnet":
            return self.conv1(self.conv0(x)), img
        shortcut = self.skip(x, gain=RESNET_BRANCH_GAIN)
        return shortcut + self.conv1(self.conv0(x), gain=RESNET_BRANCH_GAIN), img

    def extra_repr(self) -> str:
        return f"res={self.resolution}, arch={self.architecture}, fp16={self.use_fp16}"


class DiscriminatorEpilogue(nn.Module):
    """The 4×4 head: minibatch std, conv, fc, output (projected onto the label embedding if conditional)."""

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,  # size of the mapped label, 0 = unconditional
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        mbstd_group_size: int | None = 4,  # None = whole minibatch
        mbstd_num_channels: int = 1,  # 0 = no minibatch std
        activation: str = "lrelu",
        conv_clamp: float | None = None,
    ):
        super().__init__()
        self.in_channels, self.cmap_dim, self.resolution = in_channels, cmap_dim, resolution
        self.img_channels, self.architecture = img_channels, architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, 1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, 3, activation=activation,
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, cmap_dim or 1)  # one score, or a vector to project

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None,
                force_fp32: bool = False) -> torch.Tensor:
        """x ``[N, in_channels, 4, 4]``, cmap ``[N, cmap_dim]`` or None → scores ``[N, 1]``."""
        expect_shape(x, [None, self.in_channels, self.resolution, self.resolution], "epilogue input")
        x = _fp32_nchw(x)  # the head is always fp32
        if self.architecture == "skip":
            x = x + self.fromrgb(_fp32_nchw(img))
        if self.mbstd is not None:
            x = self.mbstd(x)
        scores = self.out(self.fc(self.conv(x).flatten(1)))
        if self.cmap_dim == 0:
            return scores
        expect_shape(cmap, [None, self.cmap_dim], "cmap")
        # Projection discriminator: the score is the dot product with the mapped label.
        return (scores * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))


def discriminator_record(arguments: dict[str, Any]) -> dict[str, Any]:
    """A discriminator's stored kwargs: every Discriminator argument (defaults filled in), option dicts
    as dicts, in signature order; arguments beyond those (none today) follow."""
    params = list(inspect.signature(Discriminator.__init__).parameters.values())[1:]
    record = {p.name: arguments.pop(p.name, p.default) for p in params if p.kind is p.POSITIONAL_OR_KEYWORD}
    for name in ("block_kwargs", "mapping_kwargs", "epilogue_kwargs"):
        record[name] = record[name] or {}
    return {**record, **arguments}


class Discriminator(nn.Module):
    """image, c → logit: blocks from ``img_resolution`` down to 8×8, then the 4×4 epilogue."""

    class_name = "Discriminator"

    @records_init_kwargs(normalize=discriminator_record)
    def __init__(
        self,
        c_dim: int,
        img_resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        conv_clamp: float | None = None,
        cmap_dim: int | None = None,  # mapped label size, None = channels at 4×4
        block_kwargs: dict | None = None,
        mapping_kwargs: dict | None = None,
        epilogue_kwargs: dict | None = None,
    ):
        super().__init__()
        log2 = resolution_log2(img_resolution, lowest=8)  # the official D has no 4×4-only form
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        widths = channel_table([*self.block_resolutions, 4], channel_base, channel_max)
        shared = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        self._add_blocks(widths, fp16_lowest_resolution(log2, num_fp16_res), block_kwargs or {}, shared)
        label_width = 0
        if c_dim > 0:
            label_width = widths[4] if cmap_dim is None else cmap_dim
            self.mapping = MappingNetwork(0, c_dim, label_width, None, w_avg_beta=None, **(mapping_kwargs or {}))
        self.b4 = DiscriminatorEpilogue(widths[4], cmap_dim=label_width, resolution=4,
                                        **(epilogue_kwargs or {}), **shared)

    def _add_blocks(self, widths: dict[int, int], fp16_from: int, block_kwargs: dict[str, Any],
                    shared: dict[str, Any]) -> None:
        """b{res} for each block resolution, highest first; block k's layers continue block k-1's count."""
        layer_index = 0
        for res in widths:
            if res == 4:
                continue  # the epilogue
            block = DiscriminatorBlock(0 if res == self.img_resolution else widths[res], widths[res],
                                       widths[res // 2], resolution=res, first_layer_idx=layer_index,
                                       use_fp16=(res >= fp16_from), **block_kwargs, **shared)
            self.add_module(f"b{res}", block)
            layer_index += block.num_layers

    def blocks(self) -> list[DiscriminatorBlock]:
        """The blocks before the epilogue, highest resolution first."""
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def _block_features(self, img: torch.Tensor, force_fp32: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """img ``[N, C, res, res]`` → (features ``[N, ch4, 4, 4]``, the 4×4 image for a skip epilogue or None)."""
        expect_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], "img")
        x = None
        for block in self.blocks():
            x, img = block(x, img, force_fp32=force_fp32)
        return x, img

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, force_fp32: bool = False,
                update_emas: bool = False) -> torch.Tensor:
        """img ``[N, C, res, res]`` in about [-1, 1], c ``[N, c_dim]`` → logits ``[N, 1]``.

        ``update_emas`` is accepted for the stylegan3 repository's callers; D has nothing to update.
        """
        x, img = self._block_features(img, force_fp32)
        cmap = None
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this discriminator is conditional: pass c of shape [N, {self.c_dim}]")
            cmap = self.mapping(None, c)
        return self.b4(x, img, cmap)

    def extra_repr(self) -> str:
        return f"c_dim={self.c_dim}, resolution={self.img_resolution}, channels={self.img_channels}"
