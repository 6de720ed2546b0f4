"""G's moving average: the decay per minibatch from its half-life, and the update, against the formulas
written out here in float64."""

import pytest
import torch

from stylegan.training.ema import ema_beta, ema_update


def test_beta_halves_the_average_after_half_life_images():
    # Half-life 10 kimg, minibatches of 32: after 10000 / 32 minibatches the old weights count half.
    beta = ema_beta(batch=32, ema_kimg=10, ema_rampup=None, cur_nimg=10**6)
    assert beta ** (10_000 / 32) == pytest.approx(0.5, rel=1e-12)
    assert beta == 0.5 ** (32 / 10_000)


def test_rampup_shortens_the_half_life_early_in_a_run():
    # cur_nimg 1000 with ramp-up 0.05: a half-life of 50 images instead of 10000.
    assert ema_beta(32, 10, 0.05, 1000) == pytest.approx(0.5 ** (32 / 50), rel=1e-15)
    assert ema_beta(32, 10, 0.05, 10**6) == pytest.approx(0.5 ** (32 / 10_000), rel=1e-15)  # ramp-up over
    assert ema_beta(32, 10, 0.05, 0) == 0.0  # the very first minibatch copies G


def test_update_blends_parameters_and_copies_buffers():
    torch.manual_seed(0)
    live, averaged = torch.nn.BatchNorm1d(5), torch.nn.BatchNorm1d(5)
    for module in (live, averaged):
        with torch.no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                if t.dtype.is_floating_point:
                    t.copy_(torch.randn(t.shape))
    live.num_batches_tracked.fill_(7)
    before = {k: v.double().clone() for k, v in averaged.state_dict().items()}
    ema_update(averaged, live, beta=0.9)  # its parameters require grad: an update outside no_grad would raise
    for name, p in live.named_parameters():
        p = p.detach()
        want = p.double() + 0.9 * (before[name] - p.double())
        # float32 lerp: a difference, a product and a sum, each rounded by at most 2^-24 of its size.
        scale = float(p.double().abs().max() + before[name].abs().max())
        torch.testing.assert_close(averaged.state_dict()[name].double(), want, rtol=0, atol=4 * scale * 2.0**-24)
    for name, b in live.named_buffers():
        assert torch.equal(averaged.state_dict()[name], b), name
