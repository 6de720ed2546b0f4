"""The objective's pieces against direct computations."""

import math

import numpy as np
import pytest
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


def test_style_mixing_draws_like_the_official_loss():
    """Crossover from ``random_(1, num_ws)`` on an int64 scalar, then the mixing coin, then fresh latents:
    the official order, so that equal seeds mix equally."""
    G, D = tiny_gd()
    G.eval()
    loss = StyleGAN2Loss(G, D, config=LossConfig(style_mixing_prob=0.5))
    z, c = torch.randn(3, 8), torch.zeros(3, 0)
    plain = G.mapping(z, c)
    crossovers = set()
    for seed in range(12):
        torch.manual_seed(seed)
        drawn = int(torch.empty((), dtype=torch.long).random_(1, G.num_ws))
        mixing = float(torch.rand(())) < 0.5
        other = G.mapping(torch.randn_like(z), c)
        want = torch.cat([plain[:, :drawn], other[:, drawn:]], dim=1) if mixing else plain
        torch.manual_seed(seed)
        _, ws = loss.generate(z, c)
        assert torch.equal(ws, want), seed
        crossovers.add(drawn if mixing else G.num_ws)
    assert len(crossovers) >= 3  # both outcomes of the coin and several crossovers were seen


def plain_penalty_backward(phase, G, D, z, c, real, gain, pl_mean, seed):
    """The regulariser of ``phase`` written out directly, with a plain backward (no zero anchor)."""
    torch.manual_seed(seed)
    if phase == "Greg":
        ws = G.mapping(z[:2], c[:2], skip_w_avg_update=True)
        img = G.synthesis(ws)
        y = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        (g,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)
        lengths = g.square().sum(2).mean(1).sqrt()
        mean = pl_mean + (lengths.mean() - pl_mean) * 0.01
        ((lengths - mean).square() * 2).mean().mul(gain).backward()
    else:
        x = real.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(D(x, c).sum(), x, create_graph=True)
        (g.square().sum([1, 2, 3]) * 5).mean().mul(gain).backward()


@pytest.mark.parametrize("phase", ["Greg", "Dreg"])
def test_regularisers_give_every_trained_parameter_a_gradient(phase):
    """A penalty on a derivative leaves some parameters (e.g. output biases) without any path to it. They
    must still get a gradient, an exact zero, as in the official training: Adam then decays their second
    moment and counts the step, and the gradient all-reduce (or DDP) sees every parameter in every phase.
    The other gradients are exactly those of the penalty alone."""
    G, D = tiny_gd()
    trained = G if phase == "Greg" else D
    G.requires_grad_(trained is G), D.requires_grad_(trained is D)
    z, c, real = torch.randn(4, 8), torch.zeros(4, 0), torch.randn(4, 1, 8, 8)
    loss = StyleGAN2Loss(G, D, config=LossConfig(r1_gamma=10, pl_weight=2, pl_decay=0.01, style_mixing_prob=0))
    loss.pl_mean.fill_(0.5)
    torch.manual_seed(7)
    loss.accumulate_gradients(phase, real, c, z, c, gain=4)
    ours = {n: p.grad for n, p in trained.named_parameters()}
    trained.zero_grad(set_to_none=True)
    plain_penalty_backward(phase, G, D, z, c, real, 4, torch.tensor(0.5), seed=7)
    plain = {n: p.grad for n, p in trained.named_parameters()}

    assert all(g is not None for g in ours.values())
    unreached = [n for n, g in plain.items() if g is None]
    assert unreached and all(n.endswith("bias") for n in unreached), unreached
    for name, g in ours.items():
        if plain[name] is None:
            assert torch.equal(g, torch.zeros_like(g)), name
        else:
            assert torch.allclose(g, plain[name], rtol=1e-6, atol=1e-9), name


def test_mode_seeking_term_pairs_labels_and_divides_the_weight_by_the_distance_ratio():
    """Gmain with mode_seeking W: samples i and i + N/2 are drawn with one label, and the loss gains
    W / (mean|G(z_i) − G(z_i+N/2)| / mean|z_i − z_i+N/2|), checked by autograd on the formula written here."""
    G, D = tiny_gd(c_dim=3)
    weight = 0.5
    loss = StyleGAN2Loss(G, D, config=LossConfig(style_mixing_prob=0, mode_seeking=weight))
    g = torch.Generator().manual_seed(3)
    z = torch.randn(6, 8, generator=g)
    c = F.one_hot(torch.tensor([0, 1, 2, 2, 1, 0]), 3).float()
    G.requires_grad_(True)
    loss.accumulate_gradients("Gmain", None, None, z, c, gain=1)
    got = {n: p.grad.clone() for n, p in G.named_parameters() if p.grad is not None}
    stats = loss.pop_stats()
    G.zero_grad(set_to_none=True)

    paired = torch.stack([c[0], c[1], c[2], c[0], c[1], c[2]])
    images = G(z, paired, noise_mode="random", skip_w_avg_update=True)
    adversarial = F.softplus(-D(images, paired)).mean()
    ratio = (images[:3] - images[3:]).abs().mean() / (z[:3] - z[3:]).abs().mean()
    (adversarial + weight / (ratio + 1e-5)).backward()
    assert float(torch.cat(stats["Loss/G/mode_seeking_ratio"])) == pytest.approx(ratio.item(), rel=1e-5)
    compared = 0
    for name, p in G.named_parameters():  # noise strengths are 0, but their gradients follow the noise drawn
        if p.grad is not None and not name.endswith("noise_strength"):
            torch.testing.assert_close(got[name], p.grad, rtol=1e-4, atol=1e-6)
            compared += 1
    assert compared > 10
    without = StyleGAN2Loss(G, D, config=LossConfig(style_mixing_prob=0))
    without.accumulate_gradients("Gmain", None, None, z, c, gain=1)
    assert "Loss/G/mode_seeking_ratio" not in without.pop_stats()
