"""Layers shared by the StyleGAN2 generator and discriminator.

All weights use the equalised learning rate: parameters are stored at unit scale and multiplied by
``1/sqrt(fan_in)`` (times an optional lr multiplier) when used. Parameter and buffer names follow the
official networks so that their state dicts load unchanged.
"""

from __future__ import annotations

import contextlib
import math
from typing import Sequence

import torch
from torch import nn

from stylegan.ops import ACTIVATIONS, bias_act, conv2d_resample, make_filter
from stylegan.ops.bias_act import HOMOGENEOUS, homogeneous_act

# How per-pixel noise is fed: the stored constant buffers, fresh random draws, or none at all.
NOISE_MODES = ("const", "random", "none")


def expect_shape(x: torch.Tensor, shape: Sequence[int | None], what: str) -> None:
    """Raise a readable ValueError when ``x`` does not have ``shape`` (None = any size)."""
    if x.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, x.shape)):
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{what} must have shape {want}, got {list(x.shape)}")


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale ``x`` so that its mean square along ``dim`` is 1 (StyleGAN's pixel norm on latents)."""
    inverse_rms = x.square().mean(dim=dim, keepdim=True).add(eps).rsqrt()
    return x * inverse_rms


def broadcast_w(w: torch.Tensor, count: int) -> torch.Tensor:
    """One w per sample ``[N, C]`` → the same w for every layer ``[N, count, C]``.

    A fresh tensor, not a view: callers (style mixing, projection) write rows of it in place.
    """
    return w.unsqueeze(1).repeat(1, count, 1)


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None) -> torch.Tensor:
    """The truncation trick: ``w_avg + psi · (ws − w_avg)``.

    ws ``[N, L, C]`` (or ``[N, C]``, cutoff None); with a cutoff only the first ``cutoff`` of the L
    layers move towards the average, the rest are returned as they were.
    """
    if psi == 1:
        return ws
    if cutoff is None:
        return w_avg.lerp(ws, psi)
    head = w_avg.lerp(ws[:, :cutoff], psi)
    return torch.cat([head, ws[:, cutoff:]], dim=1)


def track_w_avg(w_avg: torch.Tensor, w_batch: torch.Tensor, beta: float) -> None:
    """Move the running mean ``w_avg`` [C] towards this batch's mean w (``w_batch`` [N, C]) in place.

    ``beta`` is the share of the old value kept: ``w_avg ← beta · w_avg + (1 − beta) · mean``.
    """
    batch_mean = w_batch.detach().mean(dim=0)
    w_avg.copy_(torch.lerp(batch_mean, w_avg, beta))


# Positively homogeneous activations (act(a·x) = a·act(x) for a > 0) and their negative slopes.
_NEGATIVE_SLOPE = {"linear": None, "relu": 0.0, "lrelu": 0.2}


class FullyConnectedLayer(nn.Module):
    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,  # the mapping network learns 100× slower than the rest (0.01)
        bias_init: float = 0.0,  # affine layers start at 1 so styles start as identity scales
    ):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        # Equalised learning rate: unit-scale storage, scaled where used.
        self.weight_gain, self.bias_gain = lr_multiplier / math.sqrt(in_features), lr_multiplier

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        """x ``[N, in_features]`` → ``act(x · W'ᵀ + b') · gain`` ``[N, out_features]`` (W', b' with their lr gains).

        ``gain`` (> 0) scales the output, e.g. ToRGB's weight gain on its styles.
        """
        w = self.weight.to(x.dtype)
        b = None if self.bias is None else self.bias.to(x.dtype)
        if b is not None and self.activation in _NEGATIVE_SLOPE and gain > 0:
            # act(a·y) = a·act(y) for a > 0 here, so every gain folds into one addmm's alpha and beta.
            g = ACTIVATIONS[self.activation].default_gain * gain
            y = torch.addmm(b, x, w.t(), beta=self.bias_gain * g, alpha=self.weight_gain * g)
            slope = _NEGATIVE_SLOPE[self.activation]
            if slope is None:
                return y
            inplace = not (torch.is_grad_enabled() and y.requires_grad)
            return torch.nn.functional.leaky_relu(y, slope, inplace=inplace)  # slope 0 is relu
        if b is not None and self.bias_gain != 1:
            b = b * self.bias_gain
        y = bias_act(x.matmul(w.t() * self.weight_gain), b, act=self.activation)
        return y * gain if gain != 1 else y

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, act={self.activation}"


def w_avg_update_wanted(training: bool, skip_w_avg_update: bool, update_emas: bool | None) -> bool:
    """Whether a mapping network moves its w_avg this call.

    The ADA repository's rule: in training mode unless ``skip_w_avg_update``. The stylegan3 repository
    passes ``update_emas`` instead, and then that alone decides, as it does there.
    """
    return (training and not skip_w_avg_update) if update_emas is None else bool(update_emas)


class Conv2dLayer(nn.Module):
    """A plain (non-modulated) convolution with optional FIR up/downsampling, as used by D."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,  # clamp outputs to ±conv_clamp (keeps fp16 finite)
        channels_last: bool = False,
        trainable: bool = True,  # frozen layers (Freeze-D) keep their weights as buffers
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.register_buffer("resample_filter", make_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATIONS[activation].default_gain
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        if channels_last:
            weight = weight.to(memory_format=torch.channels_last)
        b = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(b) if b is not None else None
        else:
            self.register_buffer("weight", weight)
            self.register_buffer("bias", b)

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        g = self.act_gain * gain
        # For linear and (leaky) ReLU, act(y + b) · g = act(g·y + g·b) with g > 0: the gain rides on the
        # weights and bias, and the bias and activation then update the convolution's output in place,
        # two passes over the activations (and their gradients) fewer than bias, act, gain in turn.
        fold = self.activation in HOMOGENEOUS and g > 0
        w = (self.weight * (self.weight_gain * (g if fold else 1))).to(x.dtype)
        # Correlation is cheaper except when upsampling, where the official layer convolves.
        x = conv2d_resample(x, w, f=self.resample_filter, up=self.up, down=self.down,
                            padding=self.padding, flip_weight=(self.up == 1))
        if not fold:
            return bias_act(x, self.bias, act=self.activation, gain=g, clamp=clamp)
        if self.bias is not None:
            x = x.add_((self.bias * g).to(x.dtype).reshape(1, -1, 1, 1))
        x = homogeneous_act(x, self.activation, inplace=True)
        if clamp is not None and clamp >= 0:
            x = x.clamp(-clamp, clamp)
        return x

    def extra_repr(self) -> str:
        return (f"{self.in_channels}→{self.out_channels}, k={self.kernel_size}, act={self.activation}, "
                f"up={self.up}, down={self.down}, clamp={self.conv_clamp}")


class MinibatchStdLayer(nn.Module):
    """Appends the average standard deviation over sample groups as extra feature maps."""

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        # group_size None: the whole minibatch is one group. num_channels: std features appended.
        self.group_size, self.num_channels = group_size, num_channels
        # The batch may hold several minibatches run through D together (see independent_minibatches);
        # each forms its groups on its own, as if run alone.
        self.independent_minibatches = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.independent_minibatches > 1:
            return torch.cat([self._append_std(part) for part in x.chunk(self.independent_minibatches)])
        return self._append_std(x)

    def _append_std(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        if n % g != 0:
            raise ValueError(f"minibatch std: batch size {n} is not divisible by the group size {g}")
        f = self.num_channels
        # Strided grouping: samples i, i + n/g, i + 2n/g, ... form one group.
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # [n/g, f]
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


@contextlib.contextmanager
def independent_minibatches(module: nn.Module, count: int):
    """Within the block, ``module``'s minibatch-std layers treat the batch as ``count`` equal minibatches.

    So ``D(cat([a, b]))`` equals ``cat([D(a), D(b)])``: one pass over a larger batch, which runs faster.
    """
    layers = [m for m in module.modules() if isinstance(m, MinibatchStdLayer)]
    for layer in layers:
        layer.independent_minibatches = count
    try:
        yield
    finally:
        for layer in layers:
            layer.independent_minibatches = 1
