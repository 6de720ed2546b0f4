"""Our float32 networks against the independent float64 reference in reference.py."""

import numpy as np
import pytest
import torch

from stylegan.networks import build_network
from tests.networks import reference as ref

TOL = 1e-5  # relative L2; measured against the official code run on CPU, we agree to <= 1.4e-6


def rel_err(ours: torch.Tensor, theirs: np.ndarray) -> float:
    ours = ours.detach().double().cpu().numpy()
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))


def perturbed(net, seed):
    """Randomise every parameter and buffer (except filters) so zero inits can't hide bugs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(net.named_parameters()) + list(net.named_buffers()):
            if not name.endswith("resample_filter"):
                t.add_(torch.randn(t.shape, generator=g) * 0.3)
    return net


def numpy_state(net):
    return {k: v.double().numpy() for k, v in net.state_dict().items()}


def make_g(res=16, channels=3, c_dim=0, z_dim=16, w_dim=24, layers=2, **synthesis):
    kw = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=res, img_channels=channels,
              mapping_kwargs=dict(num_layers=layers),
              synthesis_kwargs=dict(channel_base=128, channel_max=8, **synthesis))
    torch.manual_seed(0)
    return perturbed(build_network("Generator", kw), 1), kw


G_CASES = {
    "skip": dict(),
    "orig-8-layers": dict(architecture="orig", layers=8),
    "resnet-conditional": dict(architecture="resnet", c_dim=4, layers=3),
    "grayscale-32": dict(res=32, channels=1),
    "clamped": dict(conv_clamp=0.3),
    "res4": dict(res=4),
    "wide-filter": dict(resample_filter=[1, 2, 1]),
    "skip-conditional-1-layer": dict(c_dim=3, layers=1),
    "orig-conditional-clamped": dict(architecture="orig", c_dim=2, conv_clamp=0.4),
    # fp16 blocks compute fp16 on CUDA only (test_fp16.py); here force_fp32 asks every device for fp32
    "fp16-marked-resnet": dict(architecture="resnet", num_fp16_res=2, conv_clamp=256),
}


@pytest.mark.parametrize("case", G_CASES)
def test_generator_matches_float64_reference(case, device):
    G, kw = make_g(**G_CASES[case])
    rng = np.random.RandomState(0)
    z = rng.randn(3, kw["z_dim"])
    c = np.eye(kw["c_dim"])[[i % kw["c_dim"] for i in (0, 1, 2)]] if kw["c_dim"] else None
    sd = numpy_state(G)
    G = G.to(device)
    tc = torch.from_numpy(c).float().to(device) if c is not None else None
    for psi, cutoff in [(1, None), (0.7, None), (0.5, None), (0.7, 2)]:
        ws_ref = ref.mapping(sd, "mapping.", z, c, kw["mapping_kwargs"]["num_layers"], psi=psi,
                             cutoff=cutoff, num_ws=G.num_ws)
        ws = G.mapping(torch.from_numpy(z).float().to(device), tc, truncation_psi=psi, truncation_cutoff=cutoff)
        assert rel_err(ws, ws_ref) < TOL
    ws = rng.randn(2, G.num_ws, kw["w_dim"])
    for mode in ["const", "none"]:
        want = ref.synthesis(sd, kw, ws, noise_mode=mode)
        for fused in [True, False]:
            for grad in [True, False]:  # inference takes an in-place fast path
                with torch.set_grad_enabled(grad):
                    got = G.synthesis(torch.from_numpy(ws).float().to(device), noise_mode=mode, fused_modconv=fused,
                                      force_fp32=True)
                assert rel_err(got, want) < TOL, (mode, fused, grad)


@pytest.mark.parametrize("case", ["skip", "resnet-conditional", "grayscale-32", "clamped"])
def test_generator_forward_matches_mapping_then_synthesis_of_the_reference(case, device):
    G, kw = make_g(**G_CASES[case])
    rng = np.random.RandomState(5)
    z = rng.randn(2, kw["z_dim"])
    c = np.eye(kw["c_dim"])[[1, 0]] if kw["c_dim"] else None
    sd = numpy_state(G)
    G = G.to(device)
    for psi, cutoff in [(1, None), (0.5, None), (0.7, 3)]:
        ws = ref.mapping(sd, "mapping.", z, c, kw["mapping_kwargs"]["num_layers"], psi=psi, cutoff=cutoff,
                         num_ws=G.num_ws)
        want = ref.synthesis(sd, kw, ws, noise_mode="const")
        got = G(torch.from_numpy(z).float().to(device),
                torch.from_numpy(c).float().to(device) if c is not None else None,
                truncation_psi=psi, truncation_cutoff=cutoff, noise_mode="const", force_fp32=True)
        assert rel_err(got, want) < TOL, (psi, cutoff)


def test_forward_hooks_see_block_outputs_untouched_by_later_blocks():
    # Inference overwrites intermediate activations in place where nobody else can see them; a forward
    # hook that keeps a block's output must still find what the block returned.
    G, _ = make_g()
    ws = torch.randn(2, G.num_ws, 24)
    kept = {}
    handle = G.synthesis.b8.register_forward_hook(lambda m, i, out: kept.update(x=out[0], copy=out[0].clone()))
    with torch.no_grad():
        G.synthesis(ws, noise_mode="const")
    handle.remove()
    assert torch.equal(kept["x"], kept["copy"])


def test_conv_clamp_is_really_active_in_the_clamped_case():
    G, _ = make_g(conv_clamp=0.3)
    G_free, _ = make_g()
    ws = torch.randn(2, G.num_ws, 24)
    assert (G.synthesis(ws) - G_free.synthesis(ws)).abs().max() > 1e-2


def test_random_noise_differs_between_calls_and_none_equals_zero_strength():
    G, _ = make_g()
    ws = torch.randn(2, G.num_ws, 24)
    a, b = G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random")
    assert (a - b).abs().max() > 1e-4
    none = G.synthesis(ws, noise_mode="none")
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.zero_()
    assert torch.allclose(G.synthesis(ws, noise_mode="const"), none, atol=1e-6)


def make_d(res=16, channels=3, c_dim=0, **kw):
    kw = dict(c_dim=c_dim, img_resolution=res, img_channels=channels, channel_base=128, channel_max=8, **kw)
    torch.manual_seed(0)
    return perturbed(build_network("Discriminator", kw), 2), kw


D_CASES = {
    "resnet": dict(),
    "orig": dict(architecture="orig"),
    "skip-conditional": dict(architecture="skip", c_dim=5, mapping_kwargs=dict(num_layers=2)),
    "grayscale-clamped": dict(channels=1, conv_clamp=0.5),
    "mbstd-2x2": dict(epilogue_kwargs=dict(mbstd_group_size=2, mbstd_num_channels=2)),
    "mbstd-whole-batch": dict(epilogue_kwargs=dict(mbstd_group_size=None)),
    "resnet-conditional-cmap-fp16-marked": dict(c_dim=3, cmap_dim=6, num_fp16_res=2, conv_clamp=256,
                                                mapping_kwargs=dict(num_layers=1)),
    "orig-conditional-filter": dict(architecture="orig", c_dim=2, block_kwargs=dict(resample_filter=[1, 2, 1]),
                                    mapping_kwargs=dict(num_layers=3)),
}


@pytest.mark.parametrize("case", D_CASES)
def test_discriminator_matches_float64_reference(case, device):
    D, kw = make_d(**D_CASES[case])
    rng = np.random.RandomState(1)
    img = rng.randn(4, kw["img_channels"], kw["img_resolution"], kw["img_resolution"])
    c = np.eye(kw["c_dim"])[[i % kw["c_dim"] for i in (0, 1, 2, 3)]] if kw["c_dim"] else None
    want = ref.discriminator(numpy_state(D), kw, img, c)
    got = D.to(device)(torch.from_numpy(img).float().to(device),
                       torch.from_numpy(c).float().to(device) if c is not None else None, force_fp32=True)
    assert got.shape == (4, 1)
    assert rel_err(got, want) < TOL


def test_w_avg_moves_only_in_training_mode():
    G, kw = make_g()
    z = torch.randn(8, kw["z_dim"])
    before = G.mapping.w_avg.clone()
    G.eval()(z, None)
    assert torch.equal(G.mapping.w_avg, before)
    G.train()(z, None)
    w = G.mapping(z, None, skip_w_avg_update=True)[:, 0]
    assert torch.allclose(G.mapping.w_avg, w.mean(0).lerp(before, 0.995), atol=1e-6)


def test_stylegan3_repository_calls_with_update_emas_work_as_there():
    """The stylegan3 repository passes update_emas to G, its mapping and synthesis, and D; it alone decides."""
    G, kw = make_g()
    D, _ = make_d()
    z = torch.randn(8, kw["z_dim"])
    before = G.mapping.w_avg.clone()
    G.train()(z, None, update_emas=False)
    assert torch.equal(G.mapping.w_avg, before)  # training mode, but told not to
    G.eval()(z, None, update_emas=True)
    w = G.mapping(z, None)[:, 0]
    assert torch.allclose(G.mapping.w_avg, w.mean(0).lerp(before, 0.995), atol=1e-6)  # eval mode, but told to
    img = G.synthesis(G.mapping(z, None), update_emas=False, noise_mode="const")
    assert D(img, None, update_emas=False).shape == (8, 1)


def test_num_ws_formula_and_shapes():
    for res in [4, 8, 32, 128]:
        G, _ = make_g(res=res)
        assert G.num_ws == 2 * int(np.log2(res)) - 2
        assert G(torch.randn(1, 16)).shape == (1, 3, res, res)


def test_bad_shapes_are_reported_readably():
    G, _ = make_g()
    with pytest.raises(ValueError, match=r"z must have shape \[\*, 16\]"):
        G(torch.randn(2, 5))
    with pytest.raises(ValueError, match="ws must have shape"):
        G.synthesis(torch.randn(2, 3, 24))
