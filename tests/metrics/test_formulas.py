"""Each metric formula against an independent float64 numpy/scipy computation on the same features."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.special
import torch

from stylegan.metrics import formulas


def reference_fid(mu1, s1, mu2, s2):
    # The textbook form with a general matrix square root; its tiny imaginary part is discarded.
    root = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.real(np.square(mu1 - mu2).sum() + np.trace(s1 + s2 - 2 * root)))


def gaussian_stats(rng, n, d, scale=1.0):
    x = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * scale + rng.standard_normal(d)
    return x.mean(0), np.cov(x, rowvar=False, bias=True)


@pytest.mark.parametrize("n", [500, 40])  # 40 < 64 features: rank-deficient, near-singular covariances
def test_frechet_distance_matches_scipy_sqrtm(n):
    rng = np.random.default_rng(n)
    mu1, s1 = gaussian_stats(rng, n, 64)
    mu2, s2 = gaussian_stats(rng, n, 64, scale=1.3)
    ours = formulas.frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(reference_fid(mu1, s1, mu2, s2), rel=1e-7)


def test_frechet_distance_singular_covariance_needs_imaginary_cleanup():
    rng = np.random.default_rng(3)
    mu1, s1 = gaussian_stats(rng, 10, 32)  # rank 9 of 32
    mu2, s2 = gaussian_stats(rng, 12, 32)
    assert np.abs(np.imag(scipy.linalg.sqrtm(s1 @ s2))).max() > 0  # the reference really has to clean up
    ours = formulas.frechet_distance(mu1, s1, mu2, s2)
    assert np.isreal(ours)
    assert ours == pytest.approx(reference_fid(mu1, s1, mu2, s2), rel=1e-6)


def test_frechet_distance_of_identical_statistics_is_zero_and_shift_adds_squared_norm():
    rng = np.random.default_rng(4)
    mu, s = gaussian_stats(rng, 300, 16)
    assert abs(formulas.frechet_distance(mu, s, mu, s)) < 1e-8
    shift = rng.standard_normal(16)
    assert formulas.frechet_distance(mu + shift, s, mu, s) == pytest.approx(np.square(shift).sum(), rel=1e-7)


def reference_kid(real, gen, num_subsets, max_subset_size, seed):
    # Unbiased MMD² with k(x, y) = (x·y/d + 1)³, written as means over i ≠ j, per subset.
    real, gen = real.astype(np.float64), gen.astype(np.float64)
    d = real.shape[1]
    m = min(len(real), len(gen), max_subset_size)
    rng = np.random.RandomState(seed)
    off = ~np.eye(m, dtype=bool)
    values = []
    for _ in range(num_subsets):
        x = gen[rng.choice(len(gen), m, replace=False)]
        y = real[rng.choice(len(real), m, replace=False)]
        k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
        values.append(k(x, x)[off].mean() + k(y, y)[off].mean() - 2 * k(x, y).mean())
    return float(np.mean(values))


def test_kid_matches_unbiased_polynomial_mmd():
    rng = np.random.default_rng(5)
    real = rng.standard_normal((120, 24)).astype(np.float32)
    gen = (rng.standard_normal((90, 24)) * 1.2 + 0.3).astype(np.float32)
    ours = formulas.kernel_inception_distance(torch.from_numpy(real), torch.from_numpy(gen), num_subsets=7,
                                              max_subset_size=50, seed=11)
    assert ours == pytest.approx(reference_kid(real, gen, 7, 50, 11), rel=1e-9)
    # The subset size shrinks to the smaller set.
    small = formulas.kernel_inception_distance(torch.from_numpy(real[:30]), torch.from_numpy(gen), num_subsets=3,
                                               max_subset_size=1000, seed=2)
    assert small == pytest.approx(reference_kid(real[:30], gen, 3, 1000, 2), rel=1e-9)


def test_kid_is_near_zero_for_the_same_distribution_and_positive_for_different_ones():
    rng = np.random.default_rng(6)
    a, b = (torch.from_numpy(rng.standard_normal((400, 8))) for _ in range(2))
    assert abs(formulas.kernel_inception_distance(a, b, num_subsets=5, max_subset_size=200)) < 0.05
    assert formulas.kernel_inception_distance(a, b + 1, num_subsets=5, max_subset_size=200) > 0.5


def reference_pr(real, gen, k):
    # Brute force: all pairwise distances of the float16 features, rounded to float16, k-th neighbour radii.
    real, gen = (x.astype(np.float16).astype(np.float64) for x in (real, gen))

    def dist(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).astype(np.float16).astype(np.float64)

    def inside(probes, manifold):
        radii = np.sort(dist(manifold, manifold), axis=1)[:, k]  # the row itself is the 0-th neighbour
        return (dist(probes, manifold) <= radii[None, :]).any(axis=1).mean()

    return inside(gen, real), inside(real, gen)


@pytest.mark.parametrize("row_batch,col_batch", [(10000, 10000), (7, 5)])
def test_precision_recall_matches_brute_force_knn(row_batch, col_batch):
    rng = np.random.default_rng(7)
    real = rng.standard_normal((150, 10)).astype(np.float32)
    gen = (rng.standard_normal((110, 10)) * 0.7 + 0.4).astype(np.float32)
    p, r = formulas.precision_recall(torch.from_numpy(real), torch.from_numpy(gen), k=3, row_batch=row_batch,
                                     col_batch=col_batch)
    ref_p, ref_r = reference_pr(real, gen, 3)
    assert (p, r) == (pytest.approx(ref_p, abs=1e-12), pytest.approx(ref_r, abs=1e-12))
    assert 0 < p < 1 and 0 < r < 1


def test_knn_radii_needs_more_points_than_k():
    with pytest.raises(ValueError, match="more than 3"):
        formulas.knn_radii(torch.zeros(3, 2), 3)


def reference_is(probs, splits):
    scores = []
    n = len(probs)  # official split boundaries: floor(i * n / splits)
    for part in np.split(probs.astype(np.float64), [int(np.floor(i * n / splits)) for i in range(1, splits)]):
        marginal = part.mean(0)
        scores.append(np.exp(scipy.special.rel_entr(part, marginal[None]).sum(1).mean()))
    return np.mean(scores), np.std(scores)


@pytest.mark.parametrize("n", [100, 103])
def test_inception_score_matches_mean_kl_per_split(n):
    rng = np.random.default_rng(n)
    probs = scipy.special.softmax(rng.standard_normal((n, 12)) * 2, axis=1)
    ours = formulas.inception_score(probs, 10)
    ref = reference_is(probs, 10)
    assert ours == (pytest.approx(ref[0], rel=1e-12), pytest.approx(ref[1], rel=1e-9))


def test_inception_score_bounds():
    assert formulas.inception_score(np.full((20, 5), 0.2), 10)[0] == pytest.approx(1.0)
    onehot = np.eye(5)[np.arange(50) % 5]  # confident and evenly spread: the maximum, the class count
    assert formulas.inception_score(onehot, 10)[0] == pytest.approx(5.0)


def test_slerp_is_the_great_circle_point_at_the_given_fraction_of_the_angle():
    # Checked by geometry rather than a second formula: the result is a unit vector in the plane of a and b,
    # at angle t·Ω from a and (1 − t)·Ω from b (Ω the angle between them), which fixes it uniquely.
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 16, generator=g, dtype=torch.float64), torch.randn(6, 16, generator=g, dtype=torch.float64)
    t = torch.rand(6, 1, generator=g, dtype=torch.float64)
    out = formulas.slerp(a, b, t).numpy()
    an, bn = a.numpy(), b.numpy()

    def angle(u, v):
        cos = (u * v).sum(1) / np.linalg.norm(u, axis=1) / np.linalg.norm(v, axis=1)
        return np.arccos(np.clip(cos, -1, 1))

    omega = angle(an, bn)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-12)
    np.testing.assert_allclose(angle(out, an), t.numpy()[:, 0] * omega, atol=1e-7)  # arccos near 0: sqrt(eps)
    np.testing.assert_allclose(angle(out, bn), (1 - t.numpy()[:, 0]) * omega, atol=1e-7)
    for row in range(6):  # no component outside span(a, b): least squares leaves no residual
        basis = np.stack([an[row], bn[row]], axis=1)
        coef = np.linalg.lstsq(basis, out[row], rcond=None)[0]
        np.testing.assert_allclose(basis @ coef, out[row], atol=1e-12)
    ends = [formulas.slerp(a, b, torch.full((6, 1), x, dtype=torch.float64)).numpy() for x in (0.0, 1.0)]
    np.testing.assert_allclose(ends[0], an / np.linalg.norm(an, axis=1, keepdims=True), atol=1e-12)
    np.testing.assert_allclose(ends[1], bn / np.linalg.norm(bn, axis=1, keepdims=True), atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 57, 1000])
def test_filtered_mean_keeps_values_between_the_lower_1st_and_higher_99th_percentile(n):
    d = np.random.default_rng(n).exponential(size=n) ** 3
    s = np.sort(d)
    lo, hi = s[int(np.floor(0.01 * (n - 1)))], s[int(np.ceil(0.99 * (n - 1)))]
    assert formulas.filtered_mean(d) == pytest.approx(d[(d >= lo) & (d <= hi)].mean(), rel=1e-12)
    if n == 1000:
        assert formulas.filtered_mean(d) < d.mean()  # the outliers are gone
