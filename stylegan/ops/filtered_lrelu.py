"""Filtered leaky ReLU: the non-linearity of alias-free (StyleGAN3) layers, in plain PyTorch.

The arithmetic, per channel, is the one of the official op (its reference path):

1. ``x · input_gain + bias`` (the input gain is our addition: a scalar the caller would otherwise apply
   in a pass of its own);
2. up-sample by ``up``: zero insertion, padding (negative = crop), convolution with ``fu`` scaled by ``up²``;
3. ``clamp(lrelu(x, slope) · gain, ±clamp)`` at the raised sampling rate;
4. convolution with ``fd`` and keeping every ``down``-th sample.

Filters are 1-D (separable, applied along x then y), 2-D, or None (identity). Padding is
``[x0, x1, y0, y1]`` relative to the up-sampled image, as in :func:`stylegan.ops.upfirdn2d`.

Only the scheduling differs from the reference: the up-sampling runs as a strided transposed convolution
per axis, which never multiplies the inserted zeros (``up`` times fewer products per axis), and the
down-sampling as a strided convolution, which computes only the samples that are kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from stylegan.ops.resample import Padding, parse_padding, upfirdn2d


def _pad_axis(x: torch.Tensor, axis: int, before: int, after: int) -> torch.Tensor:
    """Zero-pad (positive) or crop (negative) ``x`` along ``axis`` (2 = rows, 3 = columns)."""
    if before == 0 and after == 0:
        return x
    pads = [before, after, 0, 0] if axis == 3 else [0, 0, before, after]
    return F.pad(x, pads)


def _upsample_axis(x: torch.Tensor, taps: torch.Tensor, up: int, before: int, after: int, axis: int) -> torch.Tensor:
    """One axis of upfirdn with a 1-D filter: zero insertion by ``up``, padding, true convolution with ``taps``.

    The transposed convolution of ``x`` with ``taps`` at stride ``up`` is the full convolution of the
    zero-stuffed signal; the ``j``-th valid output after padding by ``before`` is its sample
    ``j + K - 1 - before``, so a pad/crop of that full result gives exactly the requested window.
    """
    channels, k = x.shape[1], taps.shape[0]
    n = x.shape[axis]
    kernel = taps.to(x.dtype)
    kernel = kernel.reshape(1, 1, 1, k) if axis == 3 else kernel.reshape(1, 1, k, 1)
    stride = (1, up) if axis == 3 else (up, 1)
    full = F.conv_transpose2d(x, kernel.expand(channels, 1, *kernel.shape[2:]), stride=stride, groups=channels)
    wanted = n * up + before + after - k + 1  # outputs of the valid convolution after padding
    start = k - 1 - before
    return _pad_axis(full, axis, -start, start + wanted - full.shape[axis])


def upsample_filtered(x: torch.Tensor, f: torch.Tensor | None, up: int, padding: Padding) -> torch.Tensor:
    """``upfirdn2d(x, f, up=up, padding=padding, gain=up²)`` ``[N, C, H, W]`` → ``[N, C, H', W']``."""
    x0, x1, y0, y1 = parse_padding(padding)
    if f is None or f.ndim != 1 or up == 1:
        return upfirdn2d(x, f, up=up, padding=[x0, x1, y0, y1], gain=up * up)
    taps = f * up  # up² spread over the two axes
    x = _upsample_axis(x, taps, up, x0, x1, axis=3)
    return _upsample_axis(x, taps, up, y0, y1, axis=2)


def leaky_relu_gain_clamp(x: torch.Tensor, slope: float, gain: float, clamp: float | None) -> torch.Tensor:
    """``clamp(lrelu(x, slope) · gain, ±clamp)``, in place where autograd allows."""
    in_place = not (torch.is_grad_enabled() and x.requires_grad)
    if slope != 1:
        x = F.leaky_relu(x, slope, inplace=in_place)
    if gain != 1:
        x = x.mul_(gain) if in_place else x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp_(-clamp, clamp) if in_place else x.clamp(-clamp, clamp)
    return x


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    gain: float = 2**0.5,
    slope: float = 0.2,
    clamp: float | None = None,
    input_gain: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """Bias, up-sampling, leaky ReLU (gain, clamp) and down-sampling of ``x`` ``[N, C, H, W]``.

    Output size per axis: ``(H·up + pad0 + pad1 − (len(fu) − 1) − (len(fd) − 1) + down − 1) // down``.
    ``input_gain`` (a scalar, tensor or number) multiplies ``x`` before the bias is added.
    """
    if up < 1 or down < 1:
        raise ValueError(f"filtered_lrelu: up and down must be >= 1, got {up} and {down}")
    if input_gain is not None:
        x = x * input_gain.to(x.dtype) if torch.is_tensor(input_gain) else x * float(input_gain)
    if bias is not None:
        x = x + bias.to(x.dtype).reshape(1, -1, 1, 1)
    x = upsample_filtered(x, None if fu is None else fu.to(x.dtype), up, padding)
    x = leaky_relu_gain_clamp(x, slope, gain, clamp)
    return upfirdn2d(x, None if fd is None else fd.to(x.dtype), down=down)


__all__ = ["filtered_lrelu", "upsample_filtered", "leaky_relu_gain_clamp"]
