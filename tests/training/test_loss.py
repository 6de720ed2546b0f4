"""The objective's pieces against direct computations."""

import math

import numpy as np
import torch
import torch.nn.functional as F

from stylegan.networks import build_network
from stylegan.training.loss import LossConfig, StyleGAN2Loss


def tiny_gd(c_dim=0):
    torch.manual_seed(0)
    G = build_network("Generator", dict(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=8, img_channels=1,
                                        mapping_kwargs=dict(num_layers=2),
                                        synthesis_kwargs=dict(channel_base=64, channel_max=8)))
    D = build_network("Discriminator", dict(c_dim=c_dim, img_resolution=8, img_channels=1, channel_base=64,
                                            channel_max=8, epilogue_kwargs=dict(mbstd_group_size=2)))
    for name, p in G.named_parameters():  # no noise, so finite differences see a deterministic G
        if name.endswith("noise_strength"):
            p.data.zero_()
    return G.train(), D.train()


def test_generator_loss_is_non_saturating_logistic():
    G, D = tiny_gd()
    loss = StyleGAN2Loss(G, D, config=LossConfig(style_mixing_prob=0))
    z, c = torch.randn(4, 8), torch.zeros(4, 0)
    G.requires_grad_(True)
    torch.manual_seed(1)
    loss.accumulate_gradients("Gmain", None, None, z, c, gain=1)
    got = torch.cat(loss.pop_stats()["Loss/G/loss"]).numpy()
    logits = D(G(z, c, noise_mode="random", skip_w_avg_update=True), c).detach().double().numpy().ravel()
    np.testing.assert_allclose(got, np.log1p(np.exp(-logits)), rtol=1e-5)
    assert all(p.grad is not None for p in G.parameters() if p.requires_grad and p.dim() > 0)


def test_r1_penalty_matches_finite_differences():
    G, D = tiny_gd()
    loss = StyleGAN2Loss(G, D, config=LossConfig(r1_gamma=10))
    real = torch.randn(2, 1, 8, 8)
    D.requires_grad_(True)
    loss.accumulate_gradients("Dreg", real, torch.zeros(2, 0), torch.randn(2, 8), torch.zeros(2, 0), gain=1)
    penalty = torch.cat(loss.pop_stats()["Loss/r1_penalty"]).numpy()
    # ||∇_x Σ D(x)||² per sample; mbstd couples samples, so differentiate the batch sum w.r.t. each sample.
    eps, grads = 1e-2, np.zeros([2, 64])
    x = real.clone().double()
    with torch.no_grad():
        for i in range(64):
            for n in range(2):
                up, down = x.clone(), x.clone()
                up.view(2, -1)[n, i] += eps
                down.view(2, -1)[n, i] -= eps
                grads[n, i] = (D(up.float(), None).sum() - D(down.float(), None).sum()).item() / (2 * eps)
    np.testing.assert_allclose(penalty, (grads**2).sum(1), rtol=2e-2)


def test_path_length_penalty_and_running_mean():
    G, D = tiny_gd()
    cfg = LossConfig(pl_weight=2, pl_decay=0.01, pl_batch_shrink=2, style_mixing_prob=0)
    loss = StyleGAN2Loss(G, D, config=cfg)
    loss.pl_mean.fill_(0.5)
    G.requires_grad_(True)
    z = torch.randn(4, 8)
    torch.manual_seed(3)
    loss.accumulate_gradients("Greg", None, None, z, torch.zeros(4, 0), gain=4)
    penalty = torch.cat(loss.pop_stats()["Loss/pl_penalty"]).numpy()
    # Recompute the path lengths by central differences of <G(w), y> along each w coordinate.
    torch.manual_seed(3)
    ws = G.mapping(z[:2], torch.zeros(2, 0), skip_w_avg_update=True).detach()
    img = G.synthesis(ws)
    y = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
    f = lambda w: (G.synthesis(w) * y).sum(dim=[1, 2, 3]).double()  # noqa: E731
    eps, J = 1e-2, torch.zeros(2, *ws.shape[1:], dtype=torch.float64)
    with torch.no_grad():
        for i in range(ws.shape[1]):
            for k in range(ws.shape[2]):
                d = torch.zeros_like(ws)
                d[:, i, k] = eps
                J[:, i, k] = (f(ws + d) - f(ws - d)) / (2 * eps)
    lengths = J.square().sum(2).mean(1).sqrt().numpy()
    mean = 0.5 + (lengths.mean() - 0.5) * 0.01
    np.testing.assert_allclose(float(loss.pl_mean), mean, rtol=1e-3)
    # Compare |length - mean| (the penalty's square root): float32 differences limit us to ~1e-3.
    np.testing.assert_allclose(np.sqrt(penalty), np.abs(lengths - mean), atol=5e-3 * lengths.mean())


def test_discriminator_loss_on_reals_and_fakes():
    G, D = tiny_gd(c_dim=3)
    loss = StyleGAN2Loss(G, D, config=LossConfig(style_mixing_prob=0))
    real, c = torch.randn(4, 1, 8, 8), torch.eye(3)[[0, 1, 2, 0]]
    D.requires_grad_(True)
    loss.accumulate_gradients("Dmain", real, c, torch.randn(4, 8), c, gain=1)
    stats = loss.pop_stats()
    fake = torch.cat(stats["Loss/scores/fake"]).double()
    real_scores = torch.cat(stats["Loss/scores/real"]).double()
    want = F.softplus(fake) + F.softplus(-real_scores)
    np.testing.assert_allclose(torch.cat(stats["Loss/D/loss"]).numpy(), want.numpy(), rtol=1e-5)
    assert "Loss/r1_penalty" not in stats  # R1 only in the lazy Dreg phase


def test_style_mixing_switches_latents_after_one_cutoff():
    G, D = tiny_gd()
    loss = StyleGAN2Loss(G.eval(), D, config=LossConfig(style_mixing_prob=1.0))
    z = torch.randn(3, 8)
    torch.manual_seed(5)
    _, ws = loss.generate(z, torch.zeros(3, 0))
    plain = G.mapping(z, torch.zeros(3, 0))
    same = (ws - plain).abs().amax(dim=[0, 2]) < 1e-6
    k = int(same.long().sum())
    assert 1 <= k < G.num_ws and same[:k].all() and not same[k:].any()


def test_fakes_and_reals_in_one_discriminator_pass_keep_minibatch_std_per_half():
    from stylegan.networks.layers import independent_minibatches

    _, D = tiny_gd()
    a, b = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8) * 3
    separate = torch.cat([D(a, None), D(b, None)])
    with independent_minibatches(D, 2):
        together = D(torch.cat([a, b]), None)
    assert torch.allclose(together, separate, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(D(torch.cat([a, b]), None), separate, rtol=1e-3)  # mbstd would mix the halves
    assert all(m.independent_minibatches == 1 for m in D.modules() if hasattr(m, "independent_minibatches"))


def test_one_pass_dmain_equals_the_official_two_passes(monkeypatch):
    def dmain(one_pass):
        monkeypatch.setattr(StyleGAN2Loss, "_one_d_pass_for_both", property(lambda self: one_pass))
        G, D = tiny_gd(c_dim=3)
        loss = StyleGAN2Loss(G, D, config=LossConfig())
        c = torch.eye(3)[[0, 1, 2, 0]]
        D.requires_grad_(True)
        torch.manual_seed(1)
        loss.accumulate_gradients("Dmain", torch.randn(4, 1, 8, 8), c, torch.randn(4, 8), c, gain=2)
        stats = {k: torch.cat(v) for k, v in loss.pop_stats().items()}
        return stats, torch.cat([p.grad.flatten() for p in D.parameters()])

    (s1, g1), (s2, g2) = dmain(True), dmain(False)
    assert s1.keys() == s2.keys() and "Loss/D/loss" in s1 and "Loss/scores/real" in s1
    for k in s1:
        assert torch.allclose(s1[k], s2[k], rtol=1e-5, atol=1e-6), k
    assert torch.allclose(g1, g2, rtol=1e-4, atol=1e-6)
