"""Filtered leaky ReLU: the non-linearity of alias-free (StyleGAN3) layers, in plain PyTorch.

The arithmetic, per channel, is the one of the official op (its reference path):

1. ``x · input_gain + bias`` (the input gain is our addition: a scalar the caller would otherwise apply
   in a pass of its own);
2. up-sample by ``up``: zero insertion, padding (negative = crop), convolution with ``fu`` scaled by ``up²``;
3. ``clamp(lrelu(x, slope) · gain, ±clamp)`` at the raised sampling rate;
4. convolution with ``fd`` and keeping every ``down``-th sample.

Filters are 1-D (separable, applied along x then y), 2-D, or None (identity). Padding is
``[x0, x1, y0, y1]`` relative to the up-sampled image, as in :func:`stylegan.ops.upfirdn2d`.

Only the scheduling differs from the reference: :func:`stylegan.ops.upfirdn2d` up-samples by a strided
transposed convolution (per axis for 1-D filters), which never multiplies the inserted zeros (``up`` times
fewer products per axis), and down-samples by a strided convolution, which computes only the samples that
are kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from stylegan.ops.resample import Padding, upfirdn2d


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
    x = upfirdn2d(x, None if fu is None else fu.to(x.dtype), up=up, padding=padding, gain=up * up)
    x = leaky_relu_gain_clamp(x, slope, gain, clamp)
    return upfirdn2d(x, None if fd is None else fd.to(x.dtype), down=down)


__all__ = ["filtered_lrelu", "leaky_relu_gain_clamp"]
