"""The training loop's Adam (PyTorch's fused kernel on CPU) against the Adam update written out in float64."""

import numpy as np
import torch

from stylegan.training.phases import adam


def reference_adam(p, grads, lr, betas, eps=1e-8):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    b1, b2 = betas
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


def test_training_adam_follows_the_adam_update_with_lazy_regularisation_betas(device):
    rng = np.random.default_rng(0)
    start = rng.standard_normal([64, 3, 3])
    grads = [rng.standard_normal(start.shape) * 10 ** rng.uniform(-3, 1) for _ in range(5)]
    r = 4 / 5  # G's lazy-regularisation correction
    lr, betas = 0.0025 * r, (0.0, 0.99**r)

    p = torch.nn.Parameter(torch.tensor(start, dtype=torch.float32, device=device))
    opt = adam([p], lr, betas)
    assert opt.defaults["eps"] == 1e-8
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float32, device=device)
        opt.step()
    np.testing.assert_allclose(p.detach().cpu().numpy(), reference_adam(start, grads, lr, betas), rtol=0, atol=1e-6)


def test_restored_moments_of_an_nhwc_weight_step_like_the_uninterrupted_optimizer():
    """D's weights are NHWC on the CPU while snapshots store moments contiguous; the fused step needs them
    in the parameter's layout (with NCHW moments it pairs the wrong elements)."""
    from stylegan.training.phases import Phase, load_optimizer_moments, optimizer_moments

    g = torch.Generator().manual_seed(0)

    def module():
        m = torch.nn.Conv2d(4, 6, 3, bias=False)
        with torch.no_grad():
            m.weight.copy_(torch.randn(m.weight.shape, generator=g))
        return m.to(memory_format=torch.channels_last)

    grads = [torch.randn([6, 4, 3, 3], generator=g) for _ in range(3)]
    a, b = module(), module()
    b.load_state_dict(a.state_dict())
    phases = lambda m: [Phase("Dmain", m, adam(m.parameters(), 0.01, (0.0, 0.99)), 1)]  # noqa: E731
    pa, pb = phases(a), phases(b)
    for p, m in ((pa, a), (pb, b)):
        m.weight.grad = grads[0].contiguous(memory_format=torch.channels_last)
        p[0].opt.step()
    saved = {net: {name: {slot: v.contiguous().clone() for slot, v in slots.items()}  # as a snapshot file holds them
                   for name, slots in per_param.items()} for net, per_param in optimizer_moments(pa).items()}
    pb = phases(b)  # a fresh optimizer, as a resumed run builds
    load_optimizer_moments(pb, saved)
    for grad in grads[1:]:
        for p, m in ((pa, a), (pb, b)):
            m.weight.grad = grad.contiguous(memory_format=torch.channels_last)
            p[0].opt.step()
    assert torch.equal(a.weight, b.weight)
