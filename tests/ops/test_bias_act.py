"""``bias_act`` against float64 formulas written out here: every activation in ACTIVATIONS, its default gain,
an explicit gain, clamping (and its off values), and the bias broadcast along any dimension; gradients too."""

import math

import pytest
import torch

from stylegan.ops.bias_act import ACTIVATIONS, bias_act

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# The activations written from their definitions (float64 in, float64 out), with the variance-preserving
# gain each one gets when none is given: √2 for the ReLU family and swish, 1 for the rest.
FORMULAS = {
    "linear": (lambda x: x, 1.0),
    "relu": (lambda x: torch.where(x > 0, x, torch.zeros_like(x)), math.sqrt(2)),
    "lrelu": (lambda x: torch.where(x > 0, x, 0.2 * x), math.sqrt(2)),
    "tanh": (lambda x: (torch.exp(x) - torch.exp(-x)) / (torch.exp(x) + torch.exp(-x)), 1.0),
    "sigmoid": (lambda x: 1 / (1 + torch.exp(-x)), 1.0),
    "elu": (lambda x: torch.where(x > 0, x, torch.exp(x) - 1), 1.0),
    "selu": (lambda x: SELU_SCALE * torch.where(x > 0, x, SELU_ALPHA * (torch.exp(x) - 1)), 1.0),
    "softplus": (lambda x: torch.log(1 + torch.exp(x)), 1.0),
    "swish": (lambda x: x / (1 + torch.exp(-x)), math.sqrt(2)),
}


def reference(x, bias, act, gain, clamp, dim):
    """clamp(act(x + bias) · gain, ±clamp) in float64, the bias broadcast along ``dim``."""
    formula, default_gain = FORMULAS[act]
    if bias is not None:
        shape = [1] * x.ndim
        shape[dim] = bias.numel()
        x = x + bias.reshape(shape)
    y = formula(x) * (default_gain if gain is None else gain)
    if clamp is None or clamp < 0:  # None and negative values mean no clamp
        return y
    return torch.where(y > clamp, clamp, torch.where(y < -clamp, -clamp, y))


def sample(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64) * 2


def test_every_activation_has_a_formula_here():
    assert set(ACTIVATIONS) == set(FORMULAS)


@pytest.mark.parametrize("act", sorted(FORMULAS))
def test_default_gain(act):
    assert ACTIVATIONS[act].default_gain == pytest.approx(FORMULAS[act][1], rel=1e-15)


@pytest.mark.parametrize("act", sorted(FORMULAS))
@pytest.mark.parametrize("gain", [None, 1.0, 0.3])
@pytest.mark.parametrize("clamp", [None, -1, 0.6])
def test_matches_the_float64_formula(act, gain, clamp, device):
    x, b = sample([3, 5, 4, 6], 0), sample([5], 1)
    got = bias_act(x.to(device), b.to(device), act=act, gain=gain, clamp=clamp)
    torch.testing.assert_close(got.cpu(), reference(x, b, act, gain, clamp, 1))
    if clamp == 0.6:
        assert got.abs().max() <= 0.6  # the clamp applies after the gain


@pytest.mark.parametrize("act", sorted(FORMULAS))
def test_float32_is_within_float32_rounding_of_the_formula(act, device):
    """One rounding per elementary op on values of order 1: float32's default tolerance (rtol 1.3e-6,
    atol 1e-5) is well above the few ulps (2⁻²⁴ ≈ 6e-8 each) this can accumulate."""
    x, b = sample([2, 7, 5, 5], 2), sample([7], 3)
    got = bias_act(x.float().to(device), b.float().to(device), act=act, gain=0.9, clamp=1.5)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.cpu(), reference(x.float().double(), b.float().double(), act, 0.9, 1.5, 1).float())


@pytest.mark.parametrize("dim,shape", [(0, [6, 3]), (1, [2, 6]), (2, [2, 3, 6, 4]), (3, [2, 3, 4, 6]), (-1, [2, 6])])
def test_bias_is_broadcast_along_dim(dim, shape):
    x, b = sample(shape, 4), sample([6], 5)
    torch.testing.assert_close(bias_act(x, b, act="lrelu", dim=dim), reference(x, b, "lrelu", None, None, dim))


def test_without_bias():
    x = sample([2, 3, 4, 4], 6)
    want = reference(x, None, "softplus", 2.0, None, 1)
    torch.testing.assert_close(bias_act(x, None, act="softplus", gain=2.0), want)


@pytest.mark.parametrize("act", sorted(FORMULAS))
def test_gradients_match_the_formula(act):
    x0, b0 = sample([2, 4, 3, 3], 7), sample([4], 8)
    x, b = x0.clone().requires_grad_(), b0.clone().requires_grad_()
    xr, br = x0.clone().requires_grad_(), b0.clone().requires_grad_()
    gy = sample([2, 4, 3, 3], 9)
    got = torch.autograd.grad(bias_act(x, b, act=act, gain=0.7, clamp=1.0), [x, b], gy)
    want = torch.autograd.grad(reference(xr, br, act, 0.7, 1.0, 1), [xr, br], gy)
    for a, r in zip(got, want):
        torch.testing.assert_close(a, r)
