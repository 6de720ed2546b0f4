"""Modulated convolution with weight demodulation (StyleGAN2, section 2.2)."""

from __future__ import annotations

import torch

from stylegan.ops.bias_act import ACTIVATIONS, bias_act
from stylegan.ops.resample import Padding, conv2d_resample

# Activations with act(a·x) = a·act(x) for a > 0: their gain can be folded into a preceding scale.
_HOMOGENEOUS = {"linear": None, "relu": 0.0, "lrelu": 0.2}


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """``1 / ||w'||`` per sample and output channel, ``[N, O]``, for the weights ``w' = w · s``.

    Summing the squared weights over the kernel first means the ``[N, O, I, k, k]`` per-sample
    weights never have to exist: ``Σ_ik (w_oik s_ni)² = Σ_i s_ni² Σ_k w_oik²``.
    """
    return (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()


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
) -> torch.Tensor:
    """Convolve ``x`` ``[N, I, H, W]`` by ``weight`` ``[O, I, k, k]`` scaled per sample by ``styles`` ``[N, I]``.

    ``fused=True`` builds per-sample weights and runs one grouped convolution; ``fused=False`` scales the
    activations before and after a shared convolution instead. Both compute the same thing (to ~1e-6);
    the unfused form is the one to differentiate through and is usually faster on CPU. ``noise``
    (broadcastable to the output) is added after demodulation, before any bias.

    With ``act`` given, the layer's epilogue ``clamp(act(y + noise + bias) · gain · act_gain)`` is
    applied too; for (l)relu/linear it is folded into one multiply-add pass plus one in-place activation,
    instead of the five passes over the activations that separate ops would take.
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

    if not fused:
        x = x * styles.to(x.dtype).reshape(n, in_c, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), **conv)
        if act is not None and act in _HOMOGENEOUS:
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
    if act is not None and act in _HOMOGENEOUS:
        return _scale_shift_act(x, None, noise, bias, act, gain, clamp)
    if noise is not None:
        x = x + noise.to(x.dtype)
    return _bias_act_if(x, bias, act, gain, clamp)


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
        y = x.mul_(factor)
        if noise is not None:
            y.add_(noise.to(x.dtype) * g)
        if bias is not None:
            y.add_(bias.to(x.dtype).reshape(1, c, 1, 1) * g)
    else:
        shift = torch.zeros([], dtype=x.dtype, device=x.device)
        if bias is not None:
            shift = bias.to(x.dtype).reshape(1, c, 1, 1)
        if noise is not None:
            shift = shift + noise.to(x.dtype)
        if shift.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last):
            shift = shift.contiguous(memory_format=torch.channels_last)  # aligned broadcasting is ~2x faster
        y = torch.addcmul(shift * g, x, factor if torch.is_tensor(factor) else torch.tensor(factor, dtype=x.dtype))
    slope = _HOMOGENEOUS[act]
    if slope == 0.0:
        y = torch.relu_(y) if in_place else torch.relu(y)
    elif slope is not None:
        y = torch.nn.functional.leaky_relu(y, slope, inplace=in_place)
    if clamp is not None and clamp >= 0:
        y = y.clamp_(-clamp * gain, clamp * gain) if in_place else y.clamp(-clamp * gain, clamp * gain)
    return y
