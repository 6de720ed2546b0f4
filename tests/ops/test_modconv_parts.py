"""Parts of the modulated convolution against plain float64 formulas: the epilogue (demodulation scale, noise,
bias, activation, gain, clamp) folded into few passes, for every combination of its optional parts, with and
without autograd, and its general form for the other activations; the float16 rescaling; the per-sample 1×1
product and the demodulation coefficients, with their first and second derivatives."""

import itertools

import pytest
import torch

from stylegan.ops.modconv import (_balanced_for_half, _epilogue, _folded_epilogue, _pointwise,
                                  demodulation_coefficients)

SQRT2 = 2 ** 0.5


def reference_epilogue(x, scale, noise, bias, act, gain, clamp):
    """The epilogue written out in float64 torch ops: v = x·scale + noise + bias; act(v) · act_gain · gain;
    then clamped to ±clamp·gain. (l)relu's act_gain is √2, linear's 1; lrelu's negative slope is 0.2."""
    v = x
    if scale is not None:
        v = v * scale[:, :, None, None]
    if noise is not None:
        v = v + noise
    if bias is not None:
        v = v + bias[None, :, None, None]
    if act == "lrelu":
        v = torch.where(v >= 0, v, 0.2 * v) * SQRT2
    elif act == "relu":
        v = torch.where(v >= 0, v, torch.zeros_like(v)) * SQRT2
    v = v * gain
    return v if clamp is None else v.clamp(-clamp * gain, clamp * gain)


@pytest.mark.parametrize("scale,noise,bias,clamp,grad,act", list(itertools.product(
    [True, False], [True, False], [True, False], [None, 0.5], [True, False], ["lrelu", "relu", "linear"])))
def test_folded_epilogue_matches_the_float64_formula(scale, noise, bias, clamp, grad, act, device):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn([2, 8, 5, 5], generator=g, dtype=torch.float64).to(device)
    x0 = x0.contiguous(memory_format=torch.channels_last)
    s = (torch.rand([2, 8], generator=g, dtype=torch.float64) + 0.5).to(device) if scale else None
    n = torch.randn([2, 1, 5, 5], generator=g, dtype=torch.float64).to(device) if noise else None
    b = torch.randn([8], generator=g, dtype=torch.float64).to(device) if bias else None
    gain = 0.7
    params = [t.requires_grad_(grad) for t in (x0, s, n, b) if t is not None]

    x = x0 * 1.0  # a fresh tensor, as a convolution's output is
    with torch.set_grad_enabled(grad):
        got = _folded_epilogue(x, s, n, b, act, gain, clamp)
    ref = reference_epilogue(x0, s, n, b, act, gain, clamp)

    torch.testing.assert_close(got, ref)
    assert got.is_contiguous(memory_format=torch.channels_last)
    if grad:
        gy = torch.randn(got.shape, generator=g, dtype=torch.float64).to(device)
        for a, r in zip(torch.autograd.grad(got, params, gy), torch.autograd.grad(ref, params, gy)):
            torch.testing.assert_close(a, r)


@pytest.mark.parametrize("act", [None, "tanh", "sigmoid", "lrelu"])
def test_general_epilogue_matches_the_float64_formula(act, device):
    """Without an activation the bias is unused and nothing is clamped; tanh and sigmoid (act_gain 1) go
    through the unfolded path."""
    g = torch.Generator().manual_seed(4)
    y = torch.randn([2, 6, 4, 4], generator=g, dtype=torch.float64).to(device)
    s = (torch.rand([2, 6], generator=g, dtype=torch.float64) + 0.5).to(device)
    n = torch.randn([2, 1, 4, 4], generator=g, dtype=torch.float64).to(device)
    b = torch.randn([6], generator=g, dtype=torch.float64).to(device)
    v = y * s[:, :, None, None] + n
    if act is None:
        want = v
    else:
        v = v + b[None, :, None, None]
        formulas = {"tanh": lambda t: (1 - torch.exp(-2 * t)) / (1 + torch.exp(-2 * t)),
                    "sigmoid": lambda t: 1 / (1 + torch.exp(-t)),
                    "lrelu": lambda t: torch.where(t >= 0, t, 0.2 * t) * SQRT2}
        want = (formulas[act](v) * 0.8).clamp(-0.3 * 0.8, 0.3 * 0.8)
    got = _epilogue(y.clone(), s, n, b, act, 0.8, 0.3)
    torch.testing.assert_close(got, want)


def test_float16_rescaling_sets_unit_peaks_and_leaves_demodulated_weights_unchanged():
    g = torch.Generator().manual_seed(5)
    w = torch.randn([4, 3, 3, 3], generator=g, dtype=torch.float64) * 50
    s = torch.randn([2, 3], generator=g, dtype=torch.float64) * 300
    w2, s2 = _balanced_for_half(w, s)
    torch.testing.assert_close(w2.abs().flatten(1).max(dim=1).values, torch.full([4], 27 ** -0.5, dtype=torch.float64))
    torch.testing.assert_close(s2.abs().max(dim=1).values, torch.ones(2, dtype=torch.float64))

    def demodulated(weight, styles):  # [N, O, I, k, k], each output filter at unit norm
        per_sample = weight[None] * styles[:, None, :, None, None]
        return per_sample / per_sample.square().sum([2, 3, 4], keepdim=True).sqrt()

    torch.testing.assert_close(demodulated(w2, s2), demodulated(w, s))


@pytest.mark.parametrize("channels_last", [True, False])
def test_per_sample_pointwise_product_and_its_derivatives(channels_last, device):
    g = torch.Generator().manual_seed(1)
    x = torch.randn([3, 5, 4, 6], generator=g, dtype=torch.float64).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    w = torch.randn([3, 2, 5], generator=g, dtype=torch.float64).to(device).requires_grad_(True)
    torch.testing.assert_close(_pointwise(x, w), torch.einsum("noi,nihw->nohw", w, x))
    assert torch.autograd.gradcheck(_pointwise, (x, w))
    assert torch.autograd.gradgradcheck(_pointwise, (x, w))


def test_demodulation_coefficients_and_their_derivatives(device):
    g = torch.Generator().manual_seed(2)
    w = torch.randn([4, 3, 3, 3], generator=g, dtype=torch.float64).to(device).requires_grad_(True)
    s = torch.randn([2, 3], generator=g, dtype=torch.float64).to(device).requires_grad_(True)
    per_sample = w[None] * s[:, None, :, None, None]  # [N, O, I, k, k], what the formula avoids building
    torch.testing.assert_close(demodulation_coefficients(w, s), (per_sample.square().sum([2, 3, 4]) + 1e-8).rsqrt())
    assert torch.autograd.gradcheck(demodulation_coefficients, (w, s))
    assert torch.autograd.gradgradcheck(demodulation_coefficients, (w, s))
