"""FIR resampling (upfirdn2d) against a float64 scipy reference, and the depthwise convolution behind it,
whose derivatives of every order must equal PyTorch's own without its per-group double backward."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import convolve2d
from torch.utils._python_dispatch import TorchDispatchMode

from stylegan.ops.depthwise import depthwise_conv2d, depthwise_conv_transpose2d
from stylegan.ops.filters import make_filter
from stylegan.ops.resample import upfirdn2d


def reference_upfirdn(x, f, up, down, pad, gain):
    """Zero insertion, pad (negative crops), true convolution by the 2-D filter times gain, keep every down-th."""
    x0, x1, y0, y1 = pad
    f2 = np.outer(f, f) if f.ndim == 1 else f
    f2 = f2 * gain
    out = []
    for ch in x:
        h, w = ch.shape
        z = np.zeros([h * up, w * up])
        z[::up, ::up] = ch
        z = np.pad(z, [(max(y0, 0), max(y1, 0)), (max(x0, 0), max(x1, 0))])
        z = z[max(-y0, 0): z.shape[0] - max(-y1, 0), max(-x0, 0): z.shape[1] - max(-x1, 0)]
        out.append(convolve2d(z, f2, mode="valid")[::down, ::down])
    return np.stack(out)


CASES = list(itertools.product([(7, 9), (8, 8)], [1, 2], [2, 3, 4], [[1, 1, 1, 1], [2, 1, 1, 2], [1, 2, 0, 1],
                                                                       [0, 0, 0, 0], [-1, -1, 0, 0]],
                               [False, True], [False, True]))


@pytest.mark.parametrize("size,up,down,pad,separable,channels_last", CASES)
def test_upfirdn2d_with_downsampling_matches_float64_reference(size, up, down, pad, separable, channels_last,
                                                               device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn([2, 3, *size], generator=g, dtype=torch.float64)
    f = make_filter([1, 3, 3, 1], separable=separable).double()
    ref = np.stack([reference_upfirdn(s, f.numpy(), up, down, pad, up * up) for s in x.numpy()])
    x = x.to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    got = upfirdn2d(x, f.to(device), up=up, down=down, padding=pad, gain=up * up)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got.cpu().numpy(), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("up,pad,flip,separable", list(itertools.product(
    [2, 3], [[0, 0, 0, 0], [5, 0, 1, 4], [-3, -2, -2, -1], [2, 1, 2, 1]], [False, True], [False, True])))
def test_upsampling_by_asymmetric_filters_matches_float64_reference(up, pad, flip, separable):
    """Upsampling scatters the filter as a transposed convolution: asymmetric taps catch a reversed filter,
    and large or negative pads a misplaced crop."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn([2, 3, 6, 7], generator=g, dtype=torch.float64)
    f = torch.randn([5] if separable else [5, 4], generator=g, dtype=torch.float64)
    taps = f.flip(list(range(f.ndim))) if flip else f  # flip_filter: correlation, a convolution by f reversed
    ref = np.stack([reference_upfirdn(s, taps.numpy(), up, 1, pad, 1.5) for s in x.numpy()])
    got = upfirdn2d(x.contiguous(memory_format=torch.channels_last), f, up=up, padding=pad, gain=1.5,
                    flip_filter=flip)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel,stride,padding", list(itertools.product(
    [(4, 4), (1, 4), (4, 1)], [2, (1, 3)], [0, 1, (0, 1)])))
def test_depthwise_conv_transpose2d_derivatives_equal_pytorch_to_third_order(kernel, stride, padding, device):
    g = torch.Generator().manual_seed(3)
    x = torch.randn([2, 3, 5, 6], generator=g, dtype=torch.float64).to(device).requires_grad_(True)
    w = torch.randn([1, 1, *kernel], generator=g, dtype=torch.float64).to(device).expand(3, 1, *kernel)
    assert_same_derivatives(lambda t: depthwise_conv_transpose2d(t, w, stride, padding),
                            lambda t: F.conv_transpose2d(t, w, stride=stride, padding=padding, groups=3), x)


def derivatives(conv, x):
    """A value and its first three derivatives through a nonlinear chain around ``conv``."""
    y = conv(F.leaky_relu(x, 0.2) ** 2)
    g1, = torch.autograd.grad((torch.tanh(y) ** 2).sum(), x, create_graph=True)
    g2, = torch.autograd.grad((g1 ** 2).sum(), x, create_graph=True)
    g3, = torch.autograd.grad((g2 ** 3).sum(), x)
    return y, g1, g2, g3


def assert_same_derivatives(ours, pytorch, x):
    for a, b in zip(derivatives(ours, x), derivatives(pytorch, x)):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel,stride,padding,channels_last", list(itertools.product(
    [(4, 4), (1, 4), (4, 1), (3, 3)], [1, 2, (2, 1)], [0, 1, (0, 2), 3], [False, True])))
def test_depthwise_conv2d_derivatives_equal_pytorch_to_third_order(kernel, stride, padding, channels_last, device):
    g = torch.Generator().manual_seed(1)
    x = torch.randn([2, 3, 8, 9], generator=g, dtype=torch.float64).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    w = torch.randn([1, 1, *kernel], generator=g, dtype=torch.float64).to(device).expand(3, 1, *kernel)
    assert_same_derivatives(lambda t: depthwise_conv2d(t, w, stride, padding),
                            lambda t: F.conv2d(t, w, stride=stride, padding=padding, groups=3), x)


class CountConvolutions(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if "convolution" in str(func) and "backward" not in str(func):
            self.calls += 1
        return func(*args, **(kwargs or {}))


def test_the_double_backward_of_a_filter_is_one_convolution_not_one_per_channel(device):
    c = 32
    x = torch.randn([2, c, 16, 16], device=device, requires_grad=True)
    w = make_filter([1, 3, 3, 1]).to(device)[None, None].expand(c, 1, 4, 4)

    def r1_like(conv):
        y = conv(x)
        g, = torch.autograd.grad((y.tanh() ** 2).sum(), x, create_graph=True)
        with CountConvolutions() as counter:
            torch.autograd.grad((g ** 2).sum(), x)
        return counter.calls

    ours = r1_like(lambda t: depthwise_conv2d(t, w, 2, 1))
    pytorch = r1_like(lambda t: F.conv2d(t, w, stride=2, padding=1, groups=c))
    assert ours <= 2
    if device.type == "cpu":  # what it replaces: there PyTorch works out the filter's gradient group by group
        assert pytorch >= c


def test_a_filter_that_requires_grad_still_gets_its_gradient():
    x = torch.randn([1, 2, 6, 6])
    w = torch.randn([2, 1, 3, 3], requires_grad=True)
    depthwise_conv2d(x, w, 1, 1).sum().backward()
    ref = torch.autograd.grad(F.conv2d(x, w, padding=1, groups=2).sum(), w)[0]
    torch.testing.assert_close(w.grad, ref)
