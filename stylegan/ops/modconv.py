"""Modulated convolution with weight demodulation (StyleGAN2, section 2.2)."""

from __future__ import annotations

import torch

from stylegan.ops.bias_act import ACTIVATIONS, HOMOGENEOUS, bias_act, homogeneous_act
from stylegan.ops.resample import Padding, conv2d_resample, parse_padding



def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """``1 / ||w'||`` per sample and output channel, ``[N, O]``, for the weights ``w' = w · s``.

    Summing the squared weights over the kernel first means the ``[N, O, I, k, k]`` per-sample
    weights never have to exist: ``Σ_ik (w_oik s_ni)² = Σ_i s_ni² Σ_k w_oik²``.
    """
    # A squared copy and a reduction: an einsum of w with itself is a batched [1×k²]·[k²×1] product whose
    # backward pass (O·I tiny matrix products) measured twice as slow.
    return (styles.square() @ weight.square().sum([2, 3]).t() + 1e-8).rsqrt()


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused: bool = True,
    bias: torch.Tensor | None = None,
    act: str | None = None,
    gain: float = 1.0,
    clamp: float | None = None,
    overwrite_input: bool = False,
) -> torch.Tensor:
    """Convolve ``x`` ``[N, I, H, W]`` by ``weight`` ``[O, I, k, k]`` scaled per sample by ``styles`` ``[N, I]``.

    ``fused=True`` builds per-sample weights and runs one grouped convolution; ``fused=False`` scales the
    activations before and after a shared convolution instead. Both compute the same thing (to ~1e-6);
    the unfused form is the one to differentiate through and is usually faster on CPU. ``noise``
    (broadcastable to the output) is added after demodulation, before any bias.

    With ``act`` given, the layer's epilogue ``clamp(act(y + noise + bias) · gain · act_gain)`` is
    applied too; for (l)relu/linear it is folded into one multiply-add pass plus one in-place activation,
    instead of the five passes over the activations that separate ops would take.

    ``overwrite_input=True`` lets the unfused path scale ``x`` in place (when autograd does not need it),
    saving a copy as large as ``x``; pass it only for a tensor nobody else will read. A 1×1 kernel
    without resampling (ToRGB) always runs as one batched matrix product with per-sample weights.
    """
    n, in_c = x.shape[0], x.shape[1]
    out_c, w_in_c, kh, kw = weight.shape
    if w_in_c != in_c or styles.shape != (n, in_c):
        raise ValueError(f"modulated_conv2d: x {tuple(x.shape)}, weight {tuple(weight.shape)} and "
                         f"styles {tuple(styles.shape)} do not fit together")

    if x.dtype == torch.float16 and demodulate:
        # Bring weights and styles to unit max-norm first so fp16 intermediates cannot overflow;
        # demodulation divides the scale back out.
        weight = weight * (1 / (in_c * kh * kw) ** 0.5 / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    dcoefs = demodulation_coefficients(weight, styles) if demodulate else None
    conv = dict(f=resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight)

    if kh == 1 and kw == 1 and up == 1 and down == 1 and parse_padding(padding) == [0, 0, 0, 0]:
        # Per-sample [O, I] weights are tiny here, and a batched matmul reads x once, unscaled.
        w = weight.reshape(1, out_c, in_c) * styles.reshape(n, 1, in_c)
        if dcoefs is not None:
            w = w * dcoefs.reshape(n, out_c, 1)
        x = _pointwise(x, w.to(x.dtype))
        if act is not None and act in HOMOGENEOUS:
            return _scale_shift_act(x, None, noise, bias, act, gain, clamp)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return _bias_act_if(x, bias, act, gain, clamp)

    if not fused:
        s = styles.to(x.dtype).reshape(n, in_c, 1, 1)
        x = x.mul_(s) if overwrite_input and _writable(x) else x * s
        x = conv2d_resample(x, weight.to(x.dtype), **conv)
        if act is not None and act in HOMOGENEOUS:
            return _scale_shift_act(x, dcoefs, noise, bias, act, gain, clamp)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(n, out_c, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return _bias_act_if(x, bias, act, gain, clamp)

    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_c, 1, 1)
    if dcoefs is not None:
        w = w * dcoefs.reshape(n, out_c, 1, 1, 1)
    x = x.reshape(1, n * in_c, *x.shape[2:])
    x = conv2d_resample(x, w.reshape(n * out_c, in_c, kh, kw).to(x.dtype), groups=n, **conv)
    x = x.reshape(n, out_c, *x.shape[2:])
    if act is not None and act in HOMOGENEOUS:
        return _scale_shift_act(x, None, noise, bias, act, gain, clamp)
    if noise is not None:
        x = x + noise.to(x.dtype)
    return _bias_act_if(x, bias, act, gain, clamp)


def _writable(x: torch.Tensor) -> bool:
    """Whether ``x`` may be overwritten without breaking autograd."""
    return not (torch.is_grad_enabled() and x.requires_grad)


def _pointwise(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``y[n, o] = Σ_i w[n, o, i] · x[n, i]`` per pixel, for x ``[N, I, H, W]`` and w ``[N, O, I]``.

    Both memory formats are read as matrices without copying; the output keeps x's format.
    """
    n, in_c, h, wd = x.shape
    out_c = w.shape[1]
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        pixels = x.permute(0, 2, 3, 1).reshape(n, h * wd, in_c)  # a view: channels are innermost
        return _PixelsTimesWeights.apply(pixels, w).reshape(n, h, wd, out_c).permute(0, 3, 1, 2)
    return torch.bmm(w, x.reshape(n, in_c, h * wd)).reshape(n, out_c, h, wd)


class _PixelsTimesWeights(torch.autograd.Function):
    """``pixels [N, P, I] @ w [N, O, I]ᵀ``, whose weight gradient is formed as ``gradᵀ · pixels``.

    Autograd's own bmm backward forms ``pixelsᵀ · grad``, an [I×P]·[P×O] product that MKL runs 3× slower
    for the three output channels of ToRGB. The backward is plain bmm calls, so it differentiates again.
    """

    @staticmethod
    def forward(ctx, pixels, w):
        ctx.save_for_backward(pixels, w)
        return torch.bmm(pixels, w.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad):
        pixels, w = ctx.saved_tensors
        g_pixels = torch.bmm(grad, w) if ctx.needs_input_grad[0] else None
        g_w = torch.bmm(grad.transpose(1, 2), pixels) if ctx.needs_input_grad[1] else None
        return g_pixels, g_w


def _bias_act_if(x, bias, act, gain, clamp):
    if act is None:
        return x
    clamp = clamp * gain if clamp is not None else None
    return bias_act(x, bias, act=act, gain=ACTIVATIONS[act].default_gain * gain, clamp=clamp)


def _scale_shift_act(x, scale, noise, bias, act, gain, clamp):
    """``clamp(act(x · scale + noise + bias) · g)`` folded into few passes (valid since g > 0)."""
    n, c = x.shape[:2]
    g = ACTIVATIONS[act].default_gain * gain
    factor = (scale.to(x.dtype) * g).reshape(n, c, 1, 1) if scale is not None else g
    in_place = not (torch.is_grad_enabled() and x.requires_grad)
    if in_place:
        # The convolution output is ours to overwrite: scale it and add noise and bias in place, which
        # broadcasts cheaply whatever the memory format.
        # alpha= scales inside the add, one pass and no temporary (few ops also matter on a busy CPU).
        y = x.mul_(factor) if torch.is_tensor(factor) or factor != 1 else x
    elif bias is not None:
        # Under autograd x is saved for the scale's gradient, so one new tensor is made, by the first pass:
        # y = x · factor + bias · g. Neither this nor the adds below need their own output for the backward
        # pass, so the noise and the activation then work on y in place.
        shift = (bias.to(x.dtype) * g).reshape(1, c, 1, 1)
        y = torch.addcmul(shift, x, factor) if torch.is_tensor(factor) else torch.add(shift, x, alpha=factor)
        bias = None
    else:
        y = x * factor
    if noise is not None:
        # The gain goes on the noise, [N, 1, H, W], not on the gradient of the whole tensor in backward.
        y = y.add_(noise.to(x.dtype) * g)
    if bias is not None:
        y = y.add_(bias.to(x.dtype).reshape(1, c, 1, 1), alpha=g)
    y = homogeneous_act(y, act, inplace=True)
    if clamp is not None and clamp >= 0:
        # The activation's backward reads its output, so under autograd the clamp must not overwrite it.
        y = y.clamp_(-clamp * gain, clamp * gain) if in_place else y.clamp(-clamp * gain, clamp * gain)
    return y
