"""Winograd F(4×4, 3×3) convolution against float64 direct convolution, and its use in networks and training."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan.ops import conv2d_resample, winograd
from stylegan.ops.winograd import winograd_conv2d
from stylegan.training.loss import LossConfig, StyleGAN2Loss

TOL = 1e-5  # relative L2; F(4×4, 3×3) in float32 measures ~2e-6, a direct float32 convolution ~5e-7

SHAPES = [  # N, C, O, H, W, channels-last
    (2, 5, 7, 9, 13, False),   # sides that are not multiples of the 4×4 output tile
    (3, 8, 4, 16, 16, True),
    (1, 3, 3, 4, 4, False),    # a single tile
    (2, 4, 6, 7, 5, True),
    (4, 16, 16, 32, 24, True),
]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b.detach()).norm() / b.detach().norm())


def inputs(n, c, o, h, w, channels_last, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn([n, c, h, w], generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, torch.randn([o, c, 3, 3], generator=g), torch.randn([n, o, h, w], generator=g, dtype=torch.float64)


@pytest.fixture
def everywhere(monkeypatch):
    """Route every eligible 3×3 convolution through Winograd, however small."""
    monkeypatch.setattr(winograd, "MIN_SIDE", 1)
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1)
    monkeypatch.setattr(winograd, "_enabled", True)


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_gradients_match_float64(shape):
    x, w, g = inputs(*shape)
    xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
    y = winograd_conv2d(xr, wr)
    gx, gw = torch.autograd.grad(y, [xr, wr], g.float())
    xd, wd = x.double().requires_grad_(), w.double().requires_grad_()
    want = F.conv2d(xd, wd, padding=1)
    want_gx, want_gw = torch.autograd.grad(want, [xd, wd], g)
    assert y.shape == want.shape and y.dtype == torch.float32
    assert rel(y, want) < TOL and rel(gx, want_gx) < TOL and rel(gw, want_gw) < TOL
    # The output and the input gradient keep the input's memory format.
    assert y.is_contiguous(memory_format=torch.channels_last) == shape[-1]
    assert gx.stride() == x.stride()


def test_hand_written_backward_is_the_exact_adjoint_in_float64():
    """gradcheck / gradgradcheck compare the backward with finite differences of the forward itself."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn([2, 3, 9, 6], generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn([4, 3, 3, 3], generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(winograd_conv2d, (x, w))
    assert torch.autograd.gradgradcheck(winograd_conv2d, (x, w))
    assert rel(winograd_conv2d(x, w), F.conv2d(x, w, padding=1)) < 1e-12  # float64 in, float64 accuracy out


def test_only_the_requested_gradient_is_computed_and_right():
    x, w, g = inputs(2, 6, 5, 12, 12, True)
    xd, wd = x.double().requires_grad_(), w.double().requires_grad_()
    want_gx, want_gw = torch.autograd.grad(F.conv2d(xd, wd, padding=1), [xd, wd], g)
    xr = x.clone().requires_grad_()
    (gx,) = torch.autograd.grad(winograd_conv2d(xr, w), [xr], g.float())  # w frozen: a G step through D
    wr = w.clone().requires_grad_()
    (gw,) = torch.autograd.grad(winograd_conv2d(x, wr), [wr], g.float())  # x constant: D's first layer on reals
    assert rel(gx, want_gx) < TOL and rel(gw, want_gw) < TOL


@pytest.mark.parametrize("shape", SHAPES[:3])
def test_second_derivatives_match_float64(shape):
    """R1 and path-length regularisation differentiate an input gradient again (create_graph)."""
    x, w, g = inputs(*shape)

    def penalty_grads(conv, x, w):
        x, w = x.clone().requires_grad_(), w.clone().requires_grad_()
        (gx,) = torch.autograd.grad((conv(x, w) * g.to(x.dtype)).sum(), [x], create_graph=True)
        return torch.autograd.grad(gx.square().sum() + (gx * x).sum(), [x, w])

    got = penalty_grads(winograd_conv2d, x, w)
    want = penalty_grads(lambda a, b: F.conv2d(a, b, padding=1), x.double(), w.double())
    assert rel(got[0], want[0]) < TOL and rel(got[1], want[1]) < TOL


def test_chunks_grow_with_threads():
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = winograd.chunk_bytes()
        torch.set_num_threads(2)
        assert one == winograd.CHUNK_BYTES and winograd.chunk_bytes() == 4 * one
    finally:
        torch.set_num_threads(old)


def test_chunked_transforms_equal_one_pass(monkeypatch):
    x, w, g = inputs(5, 6, 7, 20, 12, True)
    results = []
    for chunk in (1 << 30, 1, 20000):  # one chunk for the batch, one sample per chunk, 2 + 2 + 1 samples
        monkeypatch.setattr(winograd, "chunk_bytes", lambda: chunk)
        xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
        y = winograd_conv2d(xr, wr)
        results.append((y, *torch.autograd.grad(y, [xr, wr], g.float())))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("stream_bytes", [1, 36 * 3 * 7 * 4 * 2, 36 * 3 * 7 * 4 * 5 * 2, 1 << 30])
@pytest.mark.parametrize("channels_last", [False, True])
def test_inference_in_bands_matches_float64(monkeypatch, stream_bytes, channels_last):
    """Without autograd the forward streams pieces: one tile row, 2 rows (the last band short), 2 samples
    of 5 tile rows each (the last piece short), or everything at once; sides that cut the last tiles."""
    monkeypatch.setattr(winograd, "STREAM_BYTES", stream_bytes)
    x, w, _ = inputs(3, 6, 7, 18, 11, channels_last)  # 5 × 3 tiles per sample, the last ones partial
    with torch.no_grad():
        y = winograd_conv2d(x, w)
    want = F.conv2d(x.double(), w.double(), padding=1)
    assert y.shape == want.shape and rel(y, want) < TOL
    assert y.is_contiguous(memory_format=torch.channels_last) == channels_last and y.is_contiguous() != channels_last


def test_misfit_shapes_are_refused():
    with pytest.raises(ValueError, match="3×3"):
        winograd_conv2d(torch.randn(1, 4, 8, 8), torch.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="do not fit"):
        winograd_conv2d(torch.randn(1, 4, 8, 8), torch.randn(2, 3, 3, 3))


def test_applies_only_where_it_pays_and_is_exact(monkeypatch):
    monkeypatch.setattr(winograd, "_enabled", True)
    big = torch.randn(1, winograd.MIN_CHANNELS, winograd.MIN_SIDE, winograd.MIN_SIDE)
    w = torch.randn(winograd.MIN_CHANNELS, winograd.MIN_CHANNELS, 3, 3)
    assert winograd.applies(big, w, [1, 1])
    assert not winograd.applies(big, w, [0, 0])                       # other padding
    assert not winograd.applies(big, w[:, :, :2, :2], [1, 1])          # other kernel
    assert not winograd.applies(big.double(), w.double(), [1, 1])      # float64 stays direct
    assert not winograd.applies(big[:, :, :-1], w, [1, 1])             # below MIN_SIDE
    assert not winograd.applies(big, w[:-1], [1, 1])                   # below MIN_CHANNELS
    assert not winograd.applies(big, w, [1, 1], groups=2)
    old = winograd.set_enabled(False)
    assert old is True and not winograd.is_enabled() and not winograd.applies(big, w, [1, 1])


def test_conv2d_resample_routes_through_winograd(everywhere, monkeypatch):
    calls = []
    real = winograd.winograd_conv2d
    monkeypatch.setattr(winograd, "winograd_conv2d", lambda x, w: calls.append(x.shape) or real(x, w))
    x, w = torch.randn(2, 4, 8, 8), torch.randn(3, 4, 3, 3)
    y = conv2d_resample(x, w, padding=1)
    assert calls == [x.shape] and rel(y, F.conv2d(x.double(), w.double(), padding=1)) < TOL
    conv2d_resample(x, w, f=torch.ones(2, 2) / 4, down=2, padding=1)  # strided: direct
    assert len(calls) == 1


def test_networks_match_the_float64_reference_through_winograd(everywhere):
    from tests.networks import reference as ref
    from tests.networks.test_numerics import D_CASES, G_CASES, make_d, make_g, numpy_state

    for case in ("skip", "resnet-conditional", "clamped"):
        G, kw = make_g(**G_CASES[case])
        ws = np.random.RandomState(0).randn(2, G.num_ws, kw["w_dim"])
        want = ref.synthesis(numpy_state(G), kw, ws, noise_mode="const")
        for fused in (False, True):  # unfused is what runs through Winograd
            got = G.synthesis(torch.from_numpy(ws).float(), noise_mode="const", fused_modconv=fused)
            assert rel(got, torch.from_numpy(want)) < TOL, (case, fused)
    for case in list(D_CASES)[:3]:
        D, kw = make_d(**D_CASES[case])
        img = np.random.RandomState(1).randn(4, kw["img_channels"], kw["img_resolution"], kw["img_resolution"])
        c = np.eye(kw["c_dim"])[[0, 1, 2, 3 % kw["c_dim"]]] if kw["c_dim"] else None
        want = ref.discriminator(numpy_state(D), kw, img, c)
        got = D(torch.from_numpy(img).float(), torch.from_numpy(c).float() if c is not None else None)
        assert rel(got, torch.from_numpy(want)) < TOL, case


def test_training_phases_give_the_same_losses_and_gradients_with_and_without_winograd(everywhere):
    """Every phase, regularisation included, agrees with direct convolution to float32 precision."""
    from stylegan.networks import build_network

    def run(enabled):
        winograd.set_enabled(enabled)
        torch.manual_seed(0)
        G = build_network("Generator", dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                                            mapping_kwargs=dict(num_layers=2),
                                            synthesis_kwargs=dict(channel_base=128, channel_max=8))).train()
        D = build_network("Discriminator", dict(c_dim=0, img_resolution=16, img_channels=3, channel_base=128,
                                                channel_max=8, epilogue_kwargs=dict(mbstd_group_size=2))).train()
        loss = StyleGAN2Loss(G, D, config=LossConfig(r1_gamma=1.0, pl_weight=2.0, pl_batch_shrink=2))
        real, z, c = torch.rand(4, 3, 16, 16) * 2 - 1, torch.randn(4, 8), torch.zeros(4, 0)
        out = {}
        for phase, module in (("Gmain", G), ("Greg", G), ("Dmain", D), ("Dreg", D)):
            G.requires_grad_(False), D.requires_grad_(False)
            module.requires_grad_(True)
            module.zero_grad(set_to_none=True)
            torch.manual_seed(1)
            loss.accumulate_gradients(phase, real, c, z, c, gain=1)
            out[phase] = ({k: torch.cat(v) for k, v in loss.pop_stats().items() if k.startswith("Loss/")},
                          torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None]))
        return out

    direct, fast = run(False), run(True)
    for phase in direct:
        (losses_d, grads_d), (losses_w, grads_w) = direct[phase], fast[phase]
        assert losses_d.keys() == losses_w.keys() and losses_d
        for k in losses_d:
            assert torch.allclose(losses_w[k], losses_d[k], rtol=1e-4, atol=1e-6), (phase, k)
        assert rel(grads_w, grads_d.double()) < 1e-4, phase


def test_unused_weight_gradient_is_skipped_under_create_graph(monkeypatch):
    """R1 asks for ∇ₓ only; the weight gradient, which D's parameters would allow, is not computed."""
    calls = []
    real = torch.nn.grad.conv2d_weight
    monkeypatch.setattr(torch.nn.grad, "conv2d_weight", lambda *a, **k: calls.append(1) or real(*a, **k))
    x, w0, g = inputs(2, 4, 3, 8, 8, True)
    w0.requires_grad_()
    x.requires_grad_()
    w = w0 * 1.0  # as in a layer: the weight times its equalised-lr gain
    (gx,) = torch.autograd.grad((winograd_conv2d(x, w) * g.float()).sum(), [x], create_graph=True)
    assert calls == []
    (gw,) = torch.autograd.grad((winograd_conv2d(x, w * 1.0) * g.float()).sum(), [w0], create_graph=True)
    assert calls == [1]
    xd, wd = x.detach().double().requires_grad_(), w0.detach().double().requires_grad_()
    want_gx, want_gw = torch.autograd.grad((F.conv2d(xd, wd, padding=1) * g).sum(), [xd, wd])
    assert rel(gx, want_gx) < TOL and rel(gw, want_gw) < TOL
