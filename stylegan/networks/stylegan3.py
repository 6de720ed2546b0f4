"""StyleGAN3 (alias-free) generator: configs stylegan3-t and stylegan3-r (Karras et al. 2021).

Constructor arguments and parameter/buffer names are the official ones, so official pickles map onto
these modules one to one and our safetensors files round-trip. The mapping network is the StyleGAN2 one
(same arithmetic) with this repository's defaults: two layers, w_avg decay 0.998.

The synthesis network: a Fourier-feature input whose frequencies are rotated and translated per sample
(and by the user's ``input.transform``), then ``num_layers`` modulated convolutions each followed by a
filtered leaky ReLU (up-sample, non-linearity, low-pass, down-sample), and a ToRGB layer. Each layer
scales its input by ``1/√magnitude_ema``, the running mean square of its inputs during training.
``stylegan3-r`` is ``conv_kernel=1, use_radial_filters=True`` (and twice the channels).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from stylegan.errors import StyleGANError
from stylegan.networks.alias_free import LayerSpec, layer_padding, lowpass_filter, synthesis_plan
from stylegan.networks.init_record import records_init_kwargs
from stylegan.networks.layers import NOISE_MODES, FullyConnectedLayer, expect_shape
from stylegan.networks.stylegan2 import MappingNetwork
from stylegan.ops import modulated_conv2d
from stylegan.ops.filtered_lrelu import filtered_lrelu

# The settings each part takes (official names); anything else in a file is an unknown setting.
MAPPING_SETTINGS = ("num_layers", "lr_multiplier", "w_avg_beta")
SYNTHESIS_SETTINGS = ("channel_base", "channel_max", "num_layers", "num_critical", "first_cutoff", "first_stopband",
                      "last_stopband_rel", "margin_size", "output_scale", "num_fp16_res")
LAYER_SETTINGS = ("conv_kernel", "filter_size", "lrelu_upsampling", "use_radial_filters", "conv_clamp",
                  "magnitude_ema_beta")
GENERATOR_SETTINGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")
_MAPPING_DEFAULTS = {"num_layers": 2, "w_avg_beta": 0.998}


def unknown_settings(init_kwargs: dict[str, Any]) -> list[str]:
    """Names in a generator's settings that no part of this network takes (``mapping_kwargs.x`` for nested ones)."""
    known = set(GENERATOR_SETTINGS + SYNTHESIS_SETTINGS + LAYER_SETTINGS)
    unknown = [name for name in init_kwargs if name not in known]
    mapping = init_kwargs.get("mapping_kwargs")
    if isinstance(mapping, dict):
        unknown += [f"mapping_kwargs.{name}" for name in mapping if name not in MAPPING_SETTINGS]
    return unknown


# --------------------------------------------------------------------------------------------------
# Input


def _disc_frequencies(channels: int, bandwidth: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Random initial frequencies ``[C, 2]`` inside the disc of radius ``bandwidth`` and phases ``[C]`` in ±½.

    A Gaussian direction with radius reshaped by ``r · exp(r²/2)^½`` (official initialisation); files
    overwrite both, so only the distribution matters.
    """
    freqs = torch.randn([channels, 2])
    phases = torch.rand([channels]) - 0.5
    if freqs.device.type == "meta":  # shape-only construction (see bounds.planned_state)
        return freqs, phases
    r = torch.linalg.vector_norm(freqs, dim=1, keepdim=True)
    return freqs * (bandwidth / r * torch.exp(-0.5 * r * r).sqrt()), phases


class SynthesisInput(nn.Module):
    """w → Fourier features ``[N, channels, size, size]``: sinusoids of fixed frequencies, rotated and
    translated by an affine function of w, and by ``transform`` (the inverse of the wanted image transform)."""

    def __init__(self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.w_dim, self.channels, self.size = w_dim, channels, int(size)
        self.sampling_rate, self.bandwidth = sampling_rate, bandwidth
        freqs, phases = _disc_frequencies(channels, bandwidth)
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        # (cos, sin, tx, ty) of the per-sample rotation and translation; starts at the identity.
        self.affine = FullyConnectedLayer(w_dim, 4)
        self.affine.weight = nn.Parameter(torch.zeros([4, w_dim]))
        self.affine.bias = nn.Parameter(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.register_buffer("transform", torch.eye(3, 3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def _sample_transforms(self, w: torch.Tensor) -> torch.Tensor:
        """``[N, 3, 3]``: the learned rotation, then the learned translation, then the user's ``transform``.

        The affine output ``(c, s, tx, ty)`` is divided by ``|(c, s)|`` so the rotation is a pure one.
        """
        raw = self.affine(w)
        c, s, tx, ty = (raw / torch.linalg.vector_norm(raw[:, :2], dim=1, keepdim=True)).unbind(dim=1)
        zero, one = torch.zeros_like(c), torch.ones_like(c)
        rotation = torch.stack([c, -s, zero, s, c, zero, zero, zero, one], dim=1).reshape(-1, 3, 3)
        translation = torch.stack([one, zero, -tx, zero, one, -ty, zero, zero, one], dim=1).reshape(-1, 3, 3)
        return rotation @ translation @ self.transform.unsqueeze(0)

    def _grid(self, device: torch.device) -> torch.Tensor:
        """Sample positions ``[size, size, 2]`` (x, y) in the signal's units: pixel centres, image centre at 0."""
        half_extent = 0.5 * self.size / self.sampling_rate
        steps = (torch.arange(self.size, device=device, dtype=torch.float32) * 2 + 1) / self.size - 1
        coords = steps * half_extent
        return torch.stack(torch.meshgrid(coords, coords, indexing="xy"), dim=-1)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """w ``[N, w_dim]`` → ``[N, channels, size, size]``."""
        expect_shape(w, [None, self.w_dim], "synthesis input w")
        transforms = self._sample_transforms(w)
        freqs = self.freqs.unsqueeze(0) @ transforms[:, :2, :2]  # [N, C, 2]
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ transforms[:, :2, 2:]).squeeze(2)
        # A user transform may push frequencies past the band: fade them out linearly up to Nyquist.
        band_edge, nyquist = self.bandwidth, self.sampling_rate / 2
        excess = (torch.linalg.vector_norm(freqs, dim=2) - band_edge) / (nyquist - band_edge)
        amplitudes = (1 - excess).clamp(0, 1)
        grid = self._grid(w.device)  # [H, W, 2]
        x = torch.einsum("hwk,nck->nhwc", grid, freqs) + phases[:, None, None, :]
        x = torch.sin(x * (2 * math.pi)) * amplitudes[:, None, None, :]
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, channels={self.channels}, size={self.size}, "
                f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}")


# --------------------------------------------------------------------------------------------------
# Layers


def _register_filter(module: nn.Module, name: str, f: torch.Tensor | None) -> None:
    # A None buffer keeps the name out of the state dict, as in the official files (identity filters).
    module.register_buffer(name, f)


class SynthesisLayer(nn.Module):
    """Modulated convolution + filtered leaky ReLU between two sampling rates (ToRGB: linear, 1×1)."""

    def __init__(
        self,
        w_dim: int,
        spec: LayerSpec,
        conv_kernel: int = 3,  # ignored by ToRGB (always 1×1)
        filter_size: int = 6,  # low-pass taps per octave of the lower rate
        lrelu_upsampling: int = 2,  # the non-linearity runs at this multiple of the higher rate
        use_radial_filters: bool = False,  # jinc down-sampling filters (not in critically sampled layers)
        conv_clamp: float | None = 256,  # clamp the pre-filter activations to ±conv_clamp
        magnitude_ema_beta: float = 0.999,  # decay of the running mean square of the input
    ):
        super().__init__()
        self.spec, self.w_dim = spec, w_dim
        self.is_torgb = spec.is_torgb
        self.in_channels, self.out_channels = spec.in_channels, spec.out_channels
        self.conv_kernel = 1 if spec.is_torgb else conv_kernel
        self.conv_clamp, self.magnitude_ema_beta = conv_clamp, magnitude_ema_beta
        high_rate = max(spec.in_sampling_rate, spec.out_sampling_rate) * (1 if spec.is_torgb else lrelu_upsampling)
        self.up_factor = _integer_ratio(high_rate, spec.in_sampling_rate)
        self.down_factor = _integer_ratio(high_rate, spec.out_sampling_rate)
        up_taps = filter_size * self.up_factor if self.up_factor > 1 and not spec.is_torgb else 1
        down_taps = filter_size * self.down_factor if self.down_factor > 1 and not spec.is_torgb else 1
        self.down_radial = bool(use_radial_filters) and not spec.is_critically_sampled

        self.affine = FullyConnectedLayer(w_dim, spec.in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([spec.out_channels, spec.in_channels, self.conv_kernel,
                                                self.conv_kernel]))
        self.bias = nn.Parameter(torch.zeros([spec.out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))
        _register_filter(self, "up_filter", lowpass_filter(up_taps, spec.in_cutoff, spec.in_half_width * 2, high_rate))
        _register_filter(self, "down_filter", lowpass_filter(down_taps, spec.out_cutoff, spec.out_half_width * 2,
                                                             high_rate, radial=self.down_radial))
        self.padding = layer_padding(spec.in_size, spec.out_size, self.conv_kernel, self.up_factor, self.down_factor,
                                     up_taps, down_taps)

    def forward(self, x: torch.Tensor, w: torch.Tensor, update_emas: bool = False,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """x ``[N, in_channels, in_size, in_size]``, w ``[N, w_dim]`` → ``[N, out_channels, out_size, out_size]``."""
        s = self.spec
        expect_shape(x, [None, self.in_channels, s.in_size, s.in_size], f"{s.name} input")
        if update_emas:
            magnitude = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = 1 / self.magnitude_ema.sqrt()
        styles = self.affine(w)
        weight = self.weight
        if self.is_torgb:
            styles = styles * (1 / math.sqrt(self.in_channels * self.conv_kernel**2))
        else:
            # Unit-scale weights and styles first (demodulation cancels the scale; this keeps the
            # products in range, as the official layer does, styles over the whole batch).
            weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
            styles = styles * styles.square().mean().rsqrt()
        y = modulated_conv2d(x.to(dtype), weight, styles, padding=self.conv_kernel - 1, demodulate=not self.is_torgb,
                             fused=x.device.type != "cpu")
        return filtered_lrelu(y, self.up_filter, self.down_filter, self.bias, up=self.up_factor, down=self.down_factor,
                              padding=self.padding, gain=1 if self.is_torgb else math.sqrt(2),
                              slope=1 if self.is_torgb else 0.2, clamp=self.conv_clamp, input_gain=input_gain)

    def extra_repr(self) -> str:
        s = self.spec
        return (f"{s.in_channels}→{s.out_channels}, size {s.in_size}→{s.out_size}, rate {s.in_sampling_rate}→"
                f"{s.out_sampling_rate}, up={self.up_factor}, down={self.down_factor}, torgb={s.is_torgb}, "
                f"critical={s.is_critically_sampled}, radial={self.down_radial}")


def _integer_ratio(high: float, low: float) -> int:
    ratio = int(np.rint(high / low))
    if ratio * low != high:
        raise ValueError(f"sampling rate {high:g} is not an integer multiple of {low:g}")
    return ratio


# --------------------------------------------------------------------------------------------------
# Synthesis and generator


class StyleGAN3SynthesisNetwork(nn.Module):
    """ws ``[N, num_layers + 2, w_dim]`` → image ``[N, img_channels, img_resolution, img_resolution]``."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,  # channels at cutoff f: channel_base / 2 / f, capped at channel_max
        channel_max: int = 512,
        num_layers: int = 14,  # layers between the Fourier input and ToRGB
        num_critical: int = 2,  # the last layers sampled at exactly the output rate
        first_cutoff: float = 2,  # f_c of the first layer
        first_stopband: float = 2**2.1,  # f_t of the first layer
        last_stopband_rel: float = 2**0.3,  # f_t of the last layer, relative to its cutoff
        margin_size: int = 10,  # extra samples on each side of the image in the non-critical layers
        output_scale: float = 0.25,
        num_fp16_res: int = 4,  # layers whose rate · 2^num_fp16_res exceeds the resolution run fp16 on CUDA
        **layer_kwargs,  # SynthesisLayer settings: conv_kernel, filter_size, use_radial_filters, ...
    ):
        super().__init__()
        unknown = [k for k in layer_kwargs if k not in LAYER_SETTINGS]
        if unknown:
            raise TypeError(f"unknown StyleGAN3 setting {unknown[0]!r}")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_layers, self.num_critical, self.output_scale = num_layers, num_critical, output_scale
        self.num_ws = num_layers + 2
        plan = synthesis_plan(img_resolution, img_channels, channel_base, channel_max, num_layers, num_critical,
                              first_cutoff, first_stopband, last_stopband_rel, margin_size, num_fp16_res)
        self.input = SynthesisInput(w_dim, plan.input_channels, plan.input_size, plan.input_sampling_rate,
                                    plan.input_bandwidth)
        self.layer_names = [spec.name for spec in plan.layers]
        self._fp16 = [spec.use_fp16 for spec in plan.layers]
        for spec in plan.layers:
            self.add_module(spec.name, SynthesisLayer(w_dim, spec, **layer_kwargs))

    def layers(self) -> list[SynthesisLayer]:
        return [getattr(self, name) for name in self.layer_names]

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", force_fp32: bool = False,
                update_emas: bool = False, **_ignored) -> torch.Tensor:
        """ws ``[N, num_ws, w_dim]`` → images in about [-1, 1]. ``noise_mode`` is accepted for the common
        calling convention; this network has no noise inputs. Other StyleGAN2 options are ignored."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        expect_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        per_layer = ws.to(torch.float32).unbind(dim=1)
        x = self.input(per_layer[0])
        cuda = ws.device.type == "cuda"
        for layer, w, fp16 in zip(self.layers(), per_layer[1:], self._fp16):
            dtype = torch.float16 if fp16 and cuda and not force_fp32 else torch.float32
            x = layer(x, w, update_emas=update_emas, dtype=dtype)
        x = x.to(torch.float32)
        return x * self.output_scale if self.output_scale != 1 else x

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
                f"img_channels={self.img_channels}, num_layers={self.num_layers}, num_critical={self.num_critical}")


class StyleGAN3Generator(nn.Module):
    """z, c → image: ``synthesis(mapping(z, c))`` with the alias-free synthesis network.

    Built with the official ``training.networks_stylegan3.Generator`` arguments (synthesis and layer
    settings passed flat).
    """

    class_name = "StyleGAN3Generator"

    @records_init_kwargs
    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: dict | None = None,  # num_layers (2), lr_multiplier (0.01), w_avg_beta (0.998)
        **synthesis_kwargs,  # StyleGAN3SynthesisNetwork and SynthesisLayer settings
    ):
        super().__init__()
        mapping_kwargs = dict(mapping_kwargs or {})
        unknown = [k for k in mapping_kwargs if k not in MAPPING_SETTINGS]
        if unknown:
            raise TypeError(f"unknown StyleGAN3 mapping setting {unknown[0]!r}")
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = StyleGAN3SynthesisNetwork(w_dim, img_resolution, img_channels, **synthesis_kwargs)
        ws_needed = self.synthesis.num_ws
        self.num_ws = ws_needed
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, ws_needed, **{**_MAPPING_DEFAULTS, **mapping_kwargs})

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, update_emas: bool = False, **synthesis_kwargs) -> torch.Tensor:
        """z ``[N, z_dim]``, c ``[N, c_dim]`` → images ``[N, img_channels, res, res]`` in about [-1, 1]."""
        synthesis_kwargs.pop("skip_w_avg_update", None)  # the StyleGAN2 name; here update_emas decides
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=bool(update_emas))
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)


def set_input_transform(G: nn.Module, translate: tuple[float, float] = (0.0, 0.0), rotate: float = 0.0) -> None:
    """Shift ``G``'s images by ``translate`` (x, y) and turn them by ``rotate`` degrees, as the official
    ``gen_images.py`` does.

    The input stores the INVERSE of the wanted transform: the matrix ``[[cos, sin, tx], [−sin, cos, ty],
    [0, 0, 1]]`` is inverted and written to ``G.synthesis.input.transform``. Translations are in the
    Fourier input's coordinates, where the image spans ``img_resolution / sampling_rate`` of the input
    (about one unit). Raises StyleGANError for networks without that transform (all but StyleGAN3).
    """
    transform = getattr(getattr(getattr(G, "synthesis", None), "input", None), "transform", None)
    if not isinstance(transform, torch.Tensor):
        raise StyleGANError("--translate and --rotate need a StyleGAN3 network; this one has no input transform",
                            "leave out --translate/--rotate, or pass a stylegan3-t or stylegan3-r network")
    angle = math.radians(rotate)
    c, s = math.cos(angle), math.sin(angle)
    wanted = np.array([[c, s, translate[0]], [-s, c, translate[1]], [0, 0, 1]], dtype=np.float64)
    with torch.no_grad():
        transform.copy_(torch.from_numpy(np.linalg.inv(wanted)))


__all__ = ["StyleGAN3Generator", "StyleGAN3SynthesisNetwork", "SynthesisInput", "SynthesisLayer",
           "set_input_transform", "unknown_settings"]
