"""The ADA controller against its specification, written out here in float64:

every ``interval`` minibatches, with r = mean of sign(D(real logits)) since the last adjustment,
p ← max(0, p + sign(r − target) · batch · interval / (kimg · 1000)).
"""

import numpy as np
import pytest
import torch

from stylegan.training.ada import AdaController


def expected_p(p: float, sign_means: list[float], target: float, batch: int, interval: int, kimg: float) -> list[float]:
    out = []
    for r in sign_means:
        p = max(0.0, p + float(np.sign(r - target)) * batch * interval / (kimg * 1000))
        out.append(p)
    return out


def test_step_size_is_one_interval_of_images_over_kimg():
    ada = AdaController(target=0.6, interval=4, kimg=500, batch=64)
    assert ada.step == pytest.approx(64 * 4 / 500_000)
    assert AdaController(target=0.6, interval=1, kimg=0.001, batch=1).step == pytest.approx(1.0)


def test_adjusts_only_every_interval_minibatches():
    ada = AdaController(target=0.6, interval=4, kimg=500, batch=64)
    assert [b for b in range(1, 13) if ada.due(b)] == [4, 8, 12]


@pytest.mark.parametrize("target", [0.6, 0.1, 0.9])
def test_p_follows_the_formula_and_never_drops_below_zero(target):
    rng = np.random.default_rng(1)
    batch, interval, kimg = 32, 4, 0.5
    ada = AdaController(target=target, interval=interval, kimg=kimg, batch=batch)
    p = torch.tensor(0.1)
    # Means of sign(D(real)) in [-1, 1], as counts of +1/-1 logits out of batch · interval.
    count = batch * interval
    positives = rng.integers(0, count + 1, size=60)
    means = [(2 * k - count) / count for k in positives]
    got = []
    for k in positives:
        ada.adjust_(p, sign_sum=float(2 * k - count), sign_count=count)
        got.append(float(p))
    want = expected_p(0.1, means, target, batch, interval, kimg)
    # p is float32: each step rounds the step size and the sum once, by at most 2^-24 of (p + step) each;
    # the errors add up over the walk.
    bound = len(want) * 2 * (max(want) + ada.step) * 2.0**-24
    np.testing.assert_allclose(got, want, rtol=0, atol=bound)
    assert min(got) == 0.0 and max(got) > 0.1  # the walk hit the floor and also rose, so both sides were tested


def test_a_mean_exactly_at_the_target_and_no_evidence_leave_p_alone():
    ada = AdaController(target=0.5, interval=4, kimg=1, batch=4)
    p = torch.tensor(0.25)
    ada.adjust_(p, sign_sum=8.0, sign_count=16)  # mean 0.5 == target: sign(0) = 0
    assert float(p) == 0.25
    ada.adjust_(p, sign_sum=0.0, sign_count=0)  # no logits seen in the interval
    assert float(p) == 0.25
    ada.adjust_(p, sign_sum=16.0, sign_count=16)
    assert float(p) == pytest.approx(0.25 + 16 / 1000)
    ada.adjust_(p, sign_sum=-16.0, sign_count=16)
    assert float(p) == pytest.approx(0.25)


def test_p_stays_a_float32_buffer_updated_in_place():
    ada = AdaController(target=0.6, interval=4, kimg=1, batch=4)
    p = torch.zeros([])
    storage = p.data_ptr()
    ada.adjust_(p, sign_sum=3.0, sign_count=4)
    assert p.dtype == torch.float32 and p.data_ptr() == storage and float(p) == pytest.approx(0.016)
