"""Modulated convolution with weight demodulation (StyleGAN2, section 2.2).

The computation is split into three steps, each a function below:

1. :func:`_balanced_for_half` (float16 only): rescale weight and styles so that no half-precision
   intermediate can overflow; demodulation removes the scale again.
2. a convolution, in one of three forms (:func:`_convolve`): per-sample weights in one grouped
   convolution ("fused"), activations scaled around one shared convolution ("unfused"), or a batched
   matrix product for 1×1 kernels without resampling. The unfused form leaves the demodulation to step 3.
3. the epilogue (:func:`_epilogue`): the pending per-channel scale, noise, bias, activation, gain, clamp.
"""

from __future__ import annotations

import torch

from stylegan.ops.bias_act import ACTIVATIONS, HOMOGENEOUS, bias_act, homogeneous_act
from stylegan.ops.resample import Padding, conv2d_resample, parse_padding
from stylegan.ops.weight_cache import weight_derivative


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """``1 / ||w'||`` per sample and output channel, ``[N, O]``, for the weights ``w' = w · s``.

    Summing the squared weights over the kernel first means the ``[N, O, I, k, k]`` per-sample
    weights never have to exist: ``Σ_ik (w_oik s_ni)² = Σ_i s_ni² Σ_k w_oik²``.
    """
    # A squared copy and a reduction: an einsum of w with itself is a batched [1×k²]·[k²×1] product whose
    # backward pass (O·I tiny matrix products) measured twice as slow.
    filter_energy = weight_derivative(weight, "energy", lambda w: w.square().sum([2, 3]).t())
    return (styles.square() @ filter_energy + 1e-8).rsqrt()


def weight_as(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``weight.to(dtype)``, the reduced-precision copy kept between inference calls."""
    if weight.dtype == dtype:
        return weight
    if dtype is not torch.bfloat16:
        return weight.to(dtype)
    return weight_derivative(weight, "bf16", lambda w: w.to(dtype))


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
    instead of the five passes over the activations that separate ops would take. Without ``act`` the
    bias is not used.

    ``overwrite_input=True`` lets the unfused path scale ``x`` in place (when autograd does not need it),
    saving a copy as large as ``x``; pass it only for a tensor nobody else will read. A 1×1 kernel
    without resampling (ToRGB) always runs as one batched matrix product with per-sample weights.
    """
    _check_operands(x, weight, styles)
    if demodulate and x.dtype is torch.float16:
        weight, styles = _balanced_for_half(weight, styles)
    demod = demodulation_coefficients(weight, styles) if demodulate else None
    y, pending_scale = _convolve(x, weight, styles, demod, fused=fused, overwrite_input=overwrite_input,
                                 resample=dict(f=resample_filter, up=up, down=down, padding=padding,
                                               flip_weight=flip_weight))
    return _epilogue(y, pending_scale, noise, bias, act, gain, clamp)


def _check_operands(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor) -> None:
    batch, channels = x.shape[:2]
    if weight.shape[1] != channels or tuple(styles.shape) != (batch, channels):
        raise ValueError(f"modulated_conv2d: x {tuple(x.shape)}, weight {tuple(weight.shape)} and "
                         f"styles {tuple(styles.shape)} do not fit together")


def _balanced_for_half(weight: torch.Tensor, styles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and styles rescaled for float16: every filter to a peak of ``1/√fan_in``, every style
    vector to a peak of 1.

    Demodulation makes the result independent of both scales, so only the overflow risk changes:
    products of large styles and weights would exceed float16's 65504 otherwise.
    """
    fan_in = weight[0].numel()
    filter_peak = weight.abs().amax(dim=[1, 2, 3], keepdim=True)
    style_peak = styles.abs().amax(dim=1, keepdim=True)
    return weight * (1 / fan_in ** 0.5 / filter_peak), styles / style_peak


def _convolve(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demod: torch.Tensor | None,
              fused: bool, overwrite_input: bool, resample: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The modulated convolution without its epilogue: ``(y [N, O, H', W'], scale [N, O] or None)``.

    ``scale`` is the part of the demodulation this form left for the epilogue to apply.
    """
    if _is_plain_pointwise(weight, resample):
        # Per-sample [O, I] weights are tiny here, and a batched matmul reads x once, unscaled.
        per_sample = _per_sample_weights(weight, styles, demod)
        return _pointwise(x, per_sample.flatten(2).to(x.dtype)), None
    if fused:
        return _grouped_conv(x, _per_sample_weights(weight, styles, demod), resample), None
    # Unfused: scale the input channels, run the shared convolution, leave the demodulation pending.
    in_scale = styles.to(x.dtype)[:, :, None, None]
    x = x.mul_(in_scale) if overwrite_input and _writable(x) else x * in_scale
    return conv2d_resample(x, weight_as(weight, x.dtype), **resample), demod


def _is_plain_pointwise(weight: torch.Tensor, resample: dict) -> bool:
    """A 1×1 kernel with neither resampling nor padding: the convolution is a per-pixel matrix product."""
    no_resampling = resample["up"] == 1 and resample["down"] == 1
    return weight.shape[2:] == (1, 1) and no_resampling and not any(parse_padding(resample["padding"]))


def _per_sample_weights(weight: torch.Tensor, styles: torch.Tensor, demod: torch.Tensor | None) -> torch.Tensor:
    """``w[o, i, ...] · s[n, i] (· d[n, o])`` for every sample: ``[N, O, I, kh, kw]``."""
    batch, out_c = styles.shape[0], weight.shape[0]
    w = weight[None] * styles[:, None, :, None, None]
    if demod is None:
        return w
    return w * demod.reshape(batch, out_c, 1, 1, 1)


def _grouped_conv(x: torch.Tensor, per_sample: torch.Tensor, resample: dict) -> torch.Tensor:
    """Each sample convolved by its own weights ``[N, O, I, kh, kw]``, as one convolution with N groups."""
    batch, out_c, in_c, kh, kw = per_sample.shape
    stacked = x.reshape(1, batch * in_c, *x.shape[2:])
    kernels = per_sample.reshape(batch * out_c, in_c, kh, kw).to(x.dtype)
    y = conv2d_resample(stacked, kernels, groups=batch, **resample)
    return y.reshape(batch, out_c, *y.shape[2:])


def _epilogue(y: torch.Tensor, scale: torch.Tensor | None, noise: torch.Tensor | None,
              bias: torch.Tensor | None, act: str | None, gain: float, clamp: float | None) -> torch.Tensor:
    """``clamp(act(y · scale + noise + bias) · act_gain · gain)``; without ``act``: ``y · scale + noise``.

    ``clamp`` is given before the gain (it is scaled by ``gain`` here, like the activation's output).
    """
    if act in HOMOGENEOUS:
        return _folded_epilogue(y, scale, noise, bias, act, gain, clamp)
    if scale is not None:
        y = y * scale.to(y.dtype)[:, :, None, None]
    if noise is not None:
        y = y + noise.to(y.dtype)
    if act is None:
        return y
    return bias_act(y, bias, act=act, gain=ACTIVATIONS[act].default_gain * gain,
                    clamp=None if clamp is None else clamp * gain)


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


def _folded_epilogue(y: torch.Tensor, scale: torch.Tensor | None, noise: torch.Tensor | None,
                     bias: torch.Tensor | None, act: str, gain: float, clamp: float | None) -> torch.Tensor:
    """:func:`_epilogue` for a positively homogeneous ``act``, in few passes.

    ``act(v) · g = act(v · g)`` for g > 0, so the total gain g is applied first, together with the scale,
    and the noise and bias are added pre-multiplied by g.
    """
    channels = y.shape[1]
    g = ACTIVATIONS[act].default_gain * gain
    factor = (scale.to(y.dtype) * g)[:, :, None, None] if scale is not None else g
    in_place = _writable(y)
    if in_place:
        # The convolution output is ours to overwrite: scale it and add noise and bias in place, which
        # broadcasts cheaply whatever the memory format.
        out = y.mul_(factor) if torch.is_tensor(factor) or factor != 1 else y
    elif bias is not None:
        # Under autograd y is saved for the scale's gradient, so one new tensor is made, by the first pass:
        # y · factor + bias · g (alpha= scales inside the add: one pass, no temporary). Nothing below needs
        # its own output for the backward pass, so the noise and the activation then work on it in place.
        shift = (bias.to(y.dtype) * g).reshape(1, channels, 1, 1)
        out = torch.addcmul(shift, y, factor) if torch.is_tensor(factor) else torch.add(shift, y, alpha=factor)
        bias = None
    else:
        out = y * factor
    if noise is not None:
        # The gain goes on the noise, [N, 1, H, W], not on the gradient of the whole tensor in backward.
        out = out.add_(noise.to(y.dtype) * g)
    if bias is not None:
        out = out.add_(bias.to(y.dtype).reshape(1, channels, 1, 1), alpha=g)
    out = homogeneous_act(out, act, inplace=True)
    if clamp is None or clamp < 0:
        return out
    limit = clamp * gain
    # The activation's backward reads its output, so under autograd the clamp must not overwrite it.
    return out.clamp_(-limit, limit) if in_place else out.clamp(-limit, limit)
