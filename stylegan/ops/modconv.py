"""Modulated convolution with weight demodulation (StyleGAN2, section 2.2)."""

from __future__ import annotations

import torch

from stylegan.ops.resample import Padding, conv2d_resample


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
) -> torch.Tensor:
    """Convolve ``x`` ``[N, I, H, W]`` by ``weight`` ``[O, I, k, k]`` scaled per sample by ``styles`` ``[N, I]``.

    ``fused=True`` builds per-sample weights and runs one grouped convolution; ``fused=False`` scales the
    activations before and after a shared convolution instead. Both compute the same thing (to ~1e-6);
    the unfused form is the one to differentiate through and is usually faster on CPU. ``noise``
    (broadcastable to the output) is added after demodulation, before any bias.
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
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(n, out_c, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x

    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_c, 1, 1)
    if dcoefs is not None:
        w = w * dcoefs.reshape(n, out_c, 1, 1, 1)
    x = x.reshape(1, n * in_c, *x.shape[2:])
    x = conv2d_resample(x, w.reshape(n * out_c, in_c, kh, kw).to(x.dtype), groups=n, **conv)
    x = x.reshape(n, out_c, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x
