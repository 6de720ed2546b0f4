"""StyleGAN2 generator and discriminator (Karras et al. 2020), as configured by StyleGAN2-ADA.

Constructor arguments, parameter names and arithmetic follow the official stylegan2-ada-pytorch
networks, so official weights load unchanged and give the same outputs. Differences are only in how
the work is scheduled (e.g. fp16 only on CUDA, where it pays off; exact fp32 everywhere else).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Sequence

import torch
from torch import nn

from stylegan.ops import ACTIVATIONS, downsample2d, make_filter, modulated_conv2d, upsample2d
from stylegan.networks.layers import (
    Conv2dLayer,
    FullyConnectedLayer,
    MinibatchStdLayer,
    expect_shape,
    normalize_2nd_moment,
    w_avg_update_wanted,
)

NOISE_MODES = ("const", "random", "none")
ARCHITECTURES = ("orig", "skip", "resnet")


def _check_resolution(img_resolution: int, lowest: int = 4) -> int:
    if img_resolution < lowest or img_resolution & (img_resolution - 1) != 0 or img_resolution > 2**14:
        raise ValueError(f"img_resolution must be a power of two >= {lowest}, got {img_resolution}")
    return int(math.log2(img_resolution))


def _channels(res: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at a resolution: halve per octave from ``channel_base / res``, capped."""
    return min(channel_base // res, channel_max)


def _fp16_threshold(log2_res: int, num_fp16_res: int) -> int:
    """Blocks at this resolution and above are marked fp16 (never below 8×8)."""
    return max(2 ** (log2_res + 1 - num_fp16_res), 8)


# How the work is scheduled depends on the device type. fp16-marked blocks compute in fp16 only on CUDA,
# where it pays off and where the official figures were made; the CPU and MPS compute the exact fp32
# arithmetic. The CPU also keeps activations NHWC and scales them around one shared convolution instead
# of grouping a convolution per sample. Tests map "cpu" to "cuda" here to run the GPU schedule (all but
# the GPU's kernels) on machines without one.
SCHEDULE_AS: dict[str, str] = {}


def scheduled_device_type(t: torch.Tensor) -> str:
    """The device type whose schedule the work on ``t`` follows: its own, unless SCHEDULE_AS maps it."""
    return SCHEDULE_AS.get(t.device.type, t.device.type)


def _compute_dtype(use_fp16: bool, x: torch.Tensor, force_fp32: bool) -> torch.dtype:
    if use_fp16 and not force_fp32 and scheduled_device_type(x) == "cuda":
        return torch.float16
    return torch.float32


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


def plain_kwargs(value: Any) -> Any:
    """Deep-copy nested kwargs into plain dicts/lists (official files use EasyDict) for JSON metadata."""
    if isinstance(value, dict):
        return {str(k): plain_kwargs(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_kwargs(v) for v in value]
    return copy.deepcopy(value)


# --------------------------------------------------------------------------------------------------
# Generator


class MappingNetwork(nn.Module):
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
        embed_features = (w_dim if embed_features is None else embed_features) if c_dim > 0 else 0
        layer_features = w_dim if layer_features is None else layer_features
        widths = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for i in range(num_layers):
            layer = FullyConnectedLayer(widths[i], widths[i + 1], activation=activation, lr_multiplier=lr_multiplier)
            setattr(self, f"fc{i}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        skip_w_avg_update: bool = False,
        update_emas: bool | None = None,  # the stylegan3 repository's name; see w_avg_update_wanted
    ) -> torch.Tensor:
        """z ``[N, z_dim]``, c ``[N, c_dim]`` (one-hot or soft labels) → ws ``[N, num_ws, w_dim]``."""
        parts = []
        if self.z_dim > 0:
            expect_shape(z, [None, self.z_dim], "z")
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this network is conditional: pass c of shape [N, {self.c_dim}]")
            expect_shape(c, [None, self.c_dim], "c")
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)

        if self.w_avg_beta is not None and w_avg_update_wanted(self.training, skip_w_avg_update, update_emas):
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            if self.w_avg_beta is None:
                raise ValueError("truncation needs w_avg, which this mapping network does not track")
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x = x.clone()
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"


class SynthesisLayer(nn.Module):
    """Modulated 3×3 convolution (optionally upsampling ×2) + noise + bias + activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,  # output resolution
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.register_buffer("resample_filter", make_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation].default_gain
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        self.weight = nn.Parameter(weight.to(memory_format=torch.channels_last) if channels_last else weight)
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, noise_mode="random", fused_modconv=True, gain=1, overwrite_input=False):
        """x ``[N, in_channels, res/up, res/up]``, w ``[N, w_dim]`` → ``[N, out_channels, res, res]``.

        ``overwrite_input`` allows scaling x in place (inference only), for inputs nobody else reads.
        """
        expect_shape(x, [None, self.in_channels, self.resolution // self.up, self.resolution // self.up],
                     "synthesis layer input")
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        # conv_clamp is scaled by the same gain as the activations (the resnet branch uses √½).
        return modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                                resample_filter=self.resample_filter, flip_weight=(self.up == 1),
                                fused=fused_modconv, bias=self.bias, act=self.activation, gain=gain,
                                clamp=self.conv_clamp, overwrite_input=overwrite_input)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}→{self.out_channels}, res={self.resolution}, up={self.up}, "
                f"noise={self.use_noise}, clamp={self.conv_clamp}")


class ToRGBLayer(nn.Module):
    """Modulated 1×1 convolution to image channels, without demodulation."""

    def __init__(self, in_channels, out_channels, w_dim, kernel_size=1, conv_clamp=None, channels_last=False):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        self.weight = nn.Parameter(weight.to(memory_format=torch.channels_last) if channels_last else weight)
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x, w, fused_modconv=True):
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
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.resolution, self.img_channels, self.is_last = resolution, img_channels, is_last
        self.architecture, self.use_fp16 = architecture, use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        # Only a scheduling choice (both modconv paths compute the same); used on GPUs when not told.
        self.fused_modconv_default = fused_modconv_default
        self.register_buffer("resample_filter", make_filter(list(resample_filter)))
        layer_args = dict(w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp,
                          channels_last=self.channels_last, **layer_kwargs)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, resample_filter=resample_filter,
                                        **layer_args)
        # conv1 never resamples; like the official block it keeps the default filter buffer, so files
        # made with a custom resample_filter still have [4, 4] here.
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer_args)
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp,
                                    channels_last=self.channels_last)
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter, channels_last=self.channels_last)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1 if (is_last or architecture == "skip") else 0

    def forward(self, x, img, ws, force_fp32=False, fused_modconv=None, noise_mode="random",
                overwrite_input=False):
        """x ``[N, in_channels, res/2, res/2]`` (None for the first block), img ``[N, C, res/2, res/2]`` or None,
        ws ``[N, num_conv + num_torgb, w_dim]`` → (x ``[N, out_channels, res, res]``, img ``[N, C, res, res]``).

        ``overwrite_input`` lets the first conv scale x in place (inference only): for the synthesis
        network's own intermediate tensors, which nothing reads afterwards.
        """
        expect_shape(ws, [None, self.num_conv + self.num_torgb, self.w_dim], "block ws")
        w_iter = iter(ws.unbind(dim=1))
        ref = ws if x is None else x
        dtype = _compute_dtype(self.use_fp16, ref, force_fp32)
        fused = _use_fused_modconv(fused_modconv, self.training, dtype, ref, self.fused_modconv_default)
        fmt = _memory_format(self.channels_last, dtype, ref)
        layer = dict(fused_modconv=fused, noise_mode=noise_mode)

        # conv1 reads a tensor made here (the repeated constant or conv0's output), so it may scale it
        # in place, unless a hook on conv0 could still be holding on to that output.
        private = not _has_forward_hooks(self.conv0 if self.in_channels else None)
        if self.in_channels == 0:
            x = self.const.to(dtype=dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = self.conv1(x.contiguous(memory_format=fmt), next(w_iter), overwrite_input=True, **layer)
        else:
            x = x.to(dtype=dtype, memory_format=fmt)
            if self.architecture == "resnet":
                # Both paths are scaled by √½ so their sum keeps unit variance. skip reads x before conv0
                # may overwrite it.
                y = self.skip(x, gain=math.sqrt(0.5))
                x = self.conv0(x, next(w_iter), overwrite_input=overwrite_input, **layer)
                x = y + self.conv1(x, next(w_iter), gain=math.sqrt(0.5), overwrite_input=private, **layer)
            else:
                x = self.conv0(x, next(w_iter), overwrite_input=overwrite_input, **layer)
                x = self.conv1(x, next(w_iter), overwrite_input=private, **layer)

        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.num_torgb:
            y = self.torgb(x, next(w_iter), fused_modconv=fused)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        return x, img

    def extra_repr(self) -> str:
        return f"res={self.resolution}, arch={self.architecture}, fp16={self.use_fp16}"


class SynthesisNetwork(nn.Module):
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
        log2 = _check_resolution(img_resolution)
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        fp16_res = _fp16_threshold(log2, num_fp16_res)
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(
                _channels(res // 2, channel_base, channel_max) if res > 4 else 0,
                _channels(res, channel_base, channel_max),
                w_dim=w_dim, resolution=res, img_channels=img_channels, is_last=(res == img_resolution),
                use_fp16=(res >= fp16_res), **block_kwargs)
            setattr(self, f"b{res}", block)
            self.num_ws += block.num_conv + (block.num_torgb if res == img_resolution else 0)

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
        w_idx = 0
        previous = None
        for block in self.blocks():
            # A block's ToRGB shares its w with the next block's first conv: idx advances by num_conv.
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            # The previous block's output is ours and already used by its ToRGB: the next block may
            # overwrite it, unless a forward hook may have kept a reference to it.
            private = previous is not None and not _has_forward_hooks(previous, previous.conv1)
            x, img = block(x, img, block_ws, force_fp32=force_fp32, fused_modconv=fused_modconv,
                           noise_mode=noise_mode, overwrite_input=private)
            previous = block
        return img

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, resolution={self.img_resolution}, channels={self.img_channels}, num_ws={self.num_ws}"


class Generator(nn.Module):
    class_name = "Generator"

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
        mapping_kwargs = plain_kwargs(mapping_kwargs or {})
        synthesis_kwargs = {**plain_kwargs(synthesis_kwargs or {}), **plain_kwargs(more_synthesis_kwargs)}
        self.init_kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                                img_channels=img_channels, mapping_kwargs=mapping_kwargs,
                                synthesis_kwargs=synthesis_kwargs)
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution,
                                          img_channels=img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None, skip_w_avg_update=False,
                update_emas=None, **synthesis_kwargs) -> torch.Tensor:
        """z ``[N, z_dim]``, c ``[N, c_dim]`` → images ``[N, img_channels, res, res]`` in about [-1, 1]."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          skip_w_avg_update=skip_w_avg_update, update_emas=update_emas)
        return self.synthesis(ws, **synthesis_kwargs)


# --------------------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorBlock(nn.Module):
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
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
        super().__init__()
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, img_channels
        self.first_layer_idx, self.architecture, self.use_fp16 = first_layer_idx, architecture, use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", make_filter(list(resample_filter)))
        self.num_layers = 0

        def trainable() -> bool:
            idx = first_layer_idx + self.num_layers
            self.num_layers += 1
            return idx >= freeze_layers

        common = dict(activation=activation, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, trainable=trainable(), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, trainable=trainable(), **common)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, down=2, trainable=trainable(),
                                 resample_filter=resample_filter, **common)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    trainable=trainable(), resample_filter=resample_filter,
                                    channels_last=self.channels_last)

    def forward(self, x, img, force_fp32=False):
        ref = img if x is None else x
        dtype = _compute_dtype(self.use_fp16, ref, force_fp32)
        fmt = _memory_format(self.channels_last, dtype, ref)
        if x is not None:
            x = x.to(dtype=dtype, memory_format=fmt)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype=dtype, memory_format=fmt)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = y + self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        else:
            x = self.conv1(self.conv0(x))
        return x, img

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
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3,
                                activation=activation, conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x, img, cmap, force_fp32=False):
        expect_shape(x, [None, self.in_channels, self.resolution, self.resolution], "epilogue input")
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)  # the head is always fp32
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(dtype=torch.float32, memory_format=torch.contiguous_format))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))
        if self.cmap_dim > 0:
            expect_shape(cmap, [None, self.cmap_dim], "cmap")
            # Projection discriminator: the score is the dot product with the mapped label.
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    class_name = "Discriminator"

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
        block_kwargs = plain_kwargs(block_kwargs or {})
        mapping_kwargs = plain_kwargs(mapping_kwargs or {})
        epilogue_kwargs = plain_kwargs(epilogue_kwargs or {})
        self.init_kwargs = dict(c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels,
                                architecture=architecture, channel_base=channel_base, channel_max=channel_max,
                                num_fp16_res=num_fp16_res, conv_clamp=conv_clamp, cmap_dim=cmap_dim,
                                block_kwargs=block_kwargs, mapping_kwargs=mapping_kwargs,
                                epilogue_kwargs=epilogue_kwargs)
        log2 = _check_resolution(img_resolution, lowest=8)  # the official D has no 4×4-only form
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        ch = {res: _channels(res, channel_base, channel_max) for res in self.block_resolutions + [4]}
        fp16_res = _fp16_threshold(log2, num_fp16_res)
        cmap_dim = (ch[4] if cmap_dim is None else cmap_dim) if c_dim > 0 else 0
        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(ch[res] if res < img_resolution else 0, ch[res], ch[res // 2],
                                       resolution=res, first_layer_idx=layer_idx, use_fp16=(res >= fp16_res),
                                       **block_kwargs, **common)
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          **mapping_kwargs)
        self.b4 = DiscriminatorEpilogue(ch[4], cmap_dim=cmap_dim, resolution=4, **epilogue_kwargs, **common)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, force_fp32: bool = False,
                update_emas: bool = False) -> torch.Tensor:
        """img ``[N, C, res, res]`` in about [-1, 1], c ``[N, c_dim]`` → logits ``[N, 1]``.

        ``update_emas`` is accepted for the stylegan3 repository's callers; D has nothing to update.
        """
        expect_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], "img")
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, force_fp32=force_fp32)
        cmap = None
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this discriminator is conditional: pass c of shape [N, {self.c_dim}]")
            cmap = self.mapping(None, c)
        return self.b4(x, img, cmap)

    def extra_repr(self) -> str:
        return f"c_dim={self.c_dim}, resolution={self.img_resolution}, channels={self.img_channels}"
