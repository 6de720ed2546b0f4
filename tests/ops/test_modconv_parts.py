"""Parts of the modulated convolution against plain float64 formulas: the epilogue (demodulation scale, noise,
bias, activation, gain, clamp) folded into few passes, for every combination of its optional parts, with and
without autograd; the per-sample 1×1 product and the demodulation coefficients, with their first and second
derivatives."""

import itertools

import pytest
import torch

from stylegan.ops.bias_act import bias_act
from stylegan.ops.modconv import _pointwise, _scale_shift_act, demodulation_coefficients


@pytest.mark.parametrize("scale,noise,bias,clamp,grad,act", list(itertools.product(
    [True, False], [True, False], [True, False], [None, 0.5], [True, False], ["lrelu", "relu", "linear"])))
def test_epilogue_equals_the_plain_composition(scale, noise, bias, clamp, grad, act, device):
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
        got = _scale_shift_act(x, s, n, b, act, gain, clamp)
    v = x0 * (s.reshape(2, 8, 1, 1) if scale else 1) + (n if noise else 0)
    full_gain = (2 ** 0.5 if act != "linear" else 1.0) * gain
    ref = bias_act(v, b, act=act, gain=full_gain, clamp=None if clamp is None else clamp * gain)

    torch.testing.assert_close(got, ref)
    assert got.is_contiguous(memory_format=torch.channels_last)
    if grad:
        gy = torch.randn(got.shape, generator=g, dtype=torch.float64).to(device)
        for a, r in zip(torch.autograd.grad(got, params, gy), torch.autograd.grad(ref, params, gy)):
            torch.testing.assert_close(a, r)


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
