"""The training loop's Adam (PyTorch's fused kernel on CPU) against the Adam update written out in float64."""

import numpy as np
import torch

from stylegan.training.loop import adam


def reference_adam(p, grads, lr, betas, eps=1e-8):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    b1, b2 = betas
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


def test_training_adam_follows_the_adam_update_with_lazy_regularisation_betas():
    rng = np.random.default_rng(0)
    start = rng.standard_normal([64, 3, 3])
    grads = [rng.standard_normal(start.shape) * 10 ** rng.uniform(-3, 1) for _ in range(5)]
    r = 4 / 5  # G's lazy-regularisation correction
    lr, betas = 0.0025 * r, (0.0, 0.99**r)

    p = torch.nn.Parameter(torch.tensor(start, dtype=torch.float32))
    opt = adam([p], lr, betas)
    assert opt.defaults["eps"] == 1e-8
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
    np.testing.assert_allclose(p.detach().numpy(), reference_adam(start, grads, lr, betas), rtol=0, atol=1e-6)
