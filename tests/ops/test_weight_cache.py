"""Weight-only work kept between inference calls (stylegan/ops/weight_cache.py): the Winograd transform of
a kernel and kernels already in the channels-last layout oneDNN reads.

Keeping values must change no result: each cached path is held to an error bound derived from its arithmetic
against a float64 computation, to bitwise equality with the same computation made afresh, and must follow
an in-place change of the weight (what optimizer steps, EMA updates and load_state_dict do).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stylegan.networks import build_network
from stylegan import precision
from stylegan.precision import inference_precision
from stylegan.ops import conv2d_resample, make_filter, weight_cache, winograd
from tests.ops.test_winograd_switch import gamma, winograd_magnitude

U32, U64 = 2.0 ** -24, 2.0 ** -53


def _nhwc(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last)


def _inputs(seed: int, c: int, side: int, o: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return _nhwc(torch.randn([1, c, side, side], generator=g)), torch.randn([o, c, 3, 3], generator=g)


@pytest.fixture(autouse=True)
def inference():
    """Values are kept only inside an inference context (what the commands and the explorer enter)."""
    with inference_precision("fp32"):
        yield


def _fresh(w: torch.Tensor) -> torch.Tensor:
    """A copy of ``w`` with nothing cached for it yet (as if the weight were used the first time)."""
    return w.clone()


def test_winograd_transform_is_kept_and_follows_weight_changes():
    c = o = winograd.MIN_CHANNELS
    x, w = _inputs(0, c, winograd.MIN_SIDE, o)
    assert winograd.applies(x, w, [1, 1])
    with torch.no_grad():
        first = conv2d_resample(x, w, padding=1)
        kept = weight_cache._derived.get(w, {}).get("winograd")
        assert kept is not None, "inference must keep the kernel's transform"
        again = conv2d_resample(x, w, padding=1)
        assert weight_cache._derived[w]["winograd"][1] is kept[1]  # reused, not recomputed
        assert torch.equal(first, again)
        assert torch.equal(first, conv2d_resample(x, _fresh(w), padding=1))

        # The bound of tests/ops/test_winograd_switch.py (C + 64 roundings on the longest path).
        assert ((first.double() - F.conv2d(x.double(), w.double(), padding=1)).abs() <= _winograd_bound(x, w)).all()

        w.mul_(-0.5).add_(0.25)  # an in-place update: the kept transform is stale now
        changed = conv2d_resample(x, w, padding=1)
        assert torch.equal(changed, conv2d_resample(x, _fresh(w), padding=1))
        assert ((changed.double() - F.conv2d(x.double(), w.double(), padding=1)).abs()
                <= _winograd_bound(x, w)).all()


def _winograd_bound(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """How far F(4×4, 3×3) in float32 may be from the exact convolution, plus float64's own error."""
    x, w = x.double(), w.double()
    c = x.shape[1]
    return (gamma(c + 64, U32) * winograd_magnitude(x, w)
            + gamma(9 * c, U64) * F.conv2d(x.abs(), w.abs(), padding=1))


def _upconv_exact(x, w, f, flip_weight):
    """The ×2 up-convolution in float64, written out: zero insertion, the kernel as a true convolution
    (or correlation with ``flip_weight``), the 4×4 filter times 4, cropped as the official op does."""
    x, w, f = x.double(), w.double(), f.double()
    kernel = w if not flip_weight else w.flip([2, 3])
    n, c, h, wd = x.shape
    z = torch.zeros([n, c, 2 * h, 2 * wd], dtype=torch.float64)
    z[:, :, ::2, ::2] = x
    # True convolution of the zero-inserted input by the kernel, full output size (pad 2 on each side).
    # Output i of that convolution sits at position i - 2 + 1 of the upsampled grid (padding 1).
    y = F.conv2d(F.pad(z, [2, 2, 2, 2]), kernel.flip([2, 3]))  # [n, o, 2h + 2, 2w + 2]
    fir = (f * 4).flip([0, 1])[None, None].expand(y.shape[1], 1, 4, 4)
    # The 4-tap filter centred as the official op places it for ×2: one zero row/column in front.
    return F.conv2d(F.pad(y, [1, 0, 1, 0]), fir, groups=y.shape[1])[:, :, : 2 * h, : 2 * wd]


def test_kept_transposed_kernel_matches_float64_and_follows_changes():
    x, w = _inputs(1, 24, 8, 16)
    f = make_filter([1, 3, 3, 1])
    with torch.no_grad():
        for flip_weight in (False, True):
            y = conv2d_resample(x, w, f=f, up=2, padding=1, flip_weight=flip_weight)
            assert y.shape == (1, 16, 16, 16)
            assert ("up", flip_weight, 1) in weight_cache._derived[w]
            assert torch.equal(y, conv2d_resample(x, w, f=f, up=2, padding=1, flip_weight=flip_weight))
            assert torch.equal(y, conv2d_resample(x, _fresh(w), f=f, up=2, padding=1, flip_weight=flip_weight))
            # Each output is a sum of at most 9·C kernel products then 16 filter taps: 9C + 16 roundings.
            magnitude = _upconv_exact(x.abs(), w.abs(), f, flip_weight)
            tol = gamma(9 * 24 + 16, U32) * magnitude
            assert ((y.double() - _upconv_exact(x, w, f, flip_weight)).abs() <= tol).all()
        w.neg_()
        y = conv2d_resample(x, w, f=f, up=2, padding=1, flip_weight=False)
        assert ((y.double() - _upconv_exact(x, w, f, False)).abs() <= tol).all()


def test_kept_direct_kernel_is_channels_last_and_exact():
    x, w = _inputs(2, 16, 8, 8)  # below the Winograd sizes: oneDNN's direct convolution
    with torch.no_grad():
        y = conv2d_resample(x, w, padding=1)
        kept = weight_cache._derived[w][("conv", True, 1)][1]
        assert kept.is_contiguous(memory_format=torch.channels_last) and torch.equal(kept, w)
        assert torch.equal(y, F.conv2d(x, w, padding=1))


def test_nothing_is_kept_under_autograd():
    c = o = winograd.MIN_CHANNELS
    x, w = _inputs(3, c, winograd.MIN_SIDE, o)
    w.requires_grad_(True)
    y = conv2d_resample(x, w, padding=1)
    assert weight_cache._derived.get(w) is None
    y.square().sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad).all()


def test_generator_follows_load_state_dict():
    """A generator keeps per-weight values between calls; loading other weights must give exactly what a
    generator built with those weights gives (Winograd layers included: 128 channels at 16² and 32²)."""
    kwargs = dict(z_dim=32, c_dim=0, w_dim=32, img_resolution=32, img_channels=3,
                  mapping_kwargs=dict(num_layers=2),
                  synthesis_kwargs=dict(channel_base=4096, channel_max=128))
    torch.manual_seed(0)
    G = build_network("Generator", kwargs).requires_grad_(False)
    torch.manual_seed(1)
    other = build_network("Generator", kwargs).requires_grad_(False)
    z = torch.randn([2, 32], generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        before = G(z, None, noise_mode="const")
        assert torch.equal(before, G(z, None, noise_mode="const"))
        G.load_state_dict(other.state_dict())
        after = G(z, None, noise_mode="const")
        assert torch.equal(after, other(z, None, noise_mode="const"))
        assert not torch.equal(after, before)


def test_nothing_is_kept_outside_inference_where_fused_adam_changes_weights_silently():
    """Training runs outside inference_precision: its fused Adam step rewrites weights without bumping their
    version counter, so a kept value would go stale (the generator of a D step drawing with old weights)."""
    x, w = _inputs(5, 16, 12, 8)
    weight = torch.nn.Parameter(w)
    opt = torch.optim.Adam([weight], lr=0.5, betas=(0.0, 0.99), eps=1e-8, fused=True)
    token = precision._keeping.set(False)  # leave the fixture's inference context, as training runs
    try:
        with torch.no_grad():
            before = winograd.winograd_conv2d(x, weight)
        version = weight._version
        weight.grad = torch.ones_like(weight)
        opt.step()
        assert weight._version == version  # the silent change this test is about
        with torch.no_grad():
            after = winograd.winograd_conv2d(x, weight)
            fresh = winograd.winograd_conv2d(x, _fresh(weight.detach()))
    finally:
        precision._keeping.reset(token)
    assert not torch.equal(before, after) and torch.equal(after, fresh)
