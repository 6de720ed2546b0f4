"""Depthwise convolution by a constant filter (the FIR filters of up/downsampling), cheap to differentiate twice.

R1 and path-length regularisation differentiate a gradient, so every filter on the way is differentiated
twice. PyTorch's double backward of a grouped convolution also works out the gradient of the weight, one
group at a time: hundreds of tiny convolutions per layer (measured: about 20 % of a regularisation step at
64², in D and in G alike), although a resampling filter is a constant. Here the gradient of a depthwise
convolution by a constant is the transposed convolution, and the gradient of that is the convolution again,
each a single call, to any order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def depthwise_conv2d(x: torch.Tensor, weight: torch.Tensor, stride=1, padding=0) -> torch.Tensor:
    """``F.conv2d(x, weight, stride=stride, padding=padding, groups=C)`` for ``weight`` ``[C, 1, kh, kw]``.

    The weight is taken as a constant: one that requires grad goes to ``F.conv2d`` as it is.
    """
    stride, padding = _pair(stride), _pair(padding)
    if weight.requires_grad:
        return F.conv2d(x, weight, stride=stride, padding=padding, groups=x.shape[1])
    return _Conv.apply(x, weight, stride, padding)


def depthwise_conv_transpose2d(x: torch.Tensor, weight: torch.Tensor, stride=1, padding=0) -> torch.Tensor:
    """``F.conv_transpose2d(x, weight, stride=stride, padding=padding, groups=C)`` for a constant ``weight``
    ``[C, 1, kh, kw]``: every sample scattered by the kernel ``stride`` apart, which is zero insertion and
    filtering in one pass."""
    stride, padding = _pair(stride), _pair(padding)
    if weight.requires_grad:
        return F.conv_transpose2d(x, weight, stride=stride, padding=padding, groups=x.shape[1])
    return _ConvTransposed.apply(x, weight, stride, padding, (0, 0))


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _output_padding(in_size, out_size, weight, stride, padding) -> tuple[int, int]:
    """What the transposed convolution must add to give back the input size (the rows a stride skipped)."""
    return tuple(in_size[i] - ((out_size[i] - 1) * stride[i] - 2 * padding[i] + weight.shape[2 + i])
                 for i in range(2))


class _Conv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, stride, padding):
        ctx.save_for_backward(weight)
        ctx.stride, ctx.padding, ctx.in_size = stride, padding, tuple(x.shape[2:])
        return F.conv2d(x, weight, stride=stride, padding=padding, groups=x.shape[1])

    @staticmethod
    def backward(ctx, gy):
        (weight,) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        out_pad = _output_padding(ctx.in_size, gy.shape[2:], weight, ctx.stride, ctx.padding)
        return _ConvTransposed.apply(gy, weight, ctx.stride, ctx.padding, out_pad), None, None, None


class _ConvTransposed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, g, weight, stride, padding, output_padding):
        ctx.save_for_backward(weight)
        ctx.stride, ctx.padding = stride, padding
        return F.conv_transpose2d(g, weight, stride=stride, padding=padding, output_padding=output_padding,
                                  groups=g.shape[1])

    @staticmethod
    def backward(ctx, gx):
        (weight,) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        return _Conv.apply(gx, weight, ctx.stride, ctx.padding), None, None, None, None
