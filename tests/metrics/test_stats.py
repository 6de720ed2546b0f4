"""Feature statistics: float64 mean/covariance accumulated batch by batch, and their .npz files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylegan.errors import StyleGANError
from stylegan.metrics.distributed import Shard, gather_units
from stylegan.metrics.stats import FeatureStats


def features(n=300, d=12, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d)) * 50 + 1000).astype(np.float32)  # a large mean stresses E[xx]−mu²


def test_mean_and_population_covariance_match_numpy_float64_whatever_the_batches():
    x = features()
    s = FeatureStats()
    for part in np.array_split(x, 7):
        s.append(torch.from_numpy(part))
    s.finish(Shard())
    x64 = x.astype(np.float64)
    assert s.count == len(x)
    np.testing.assert_allclose(s.mu, x64.mean(0), rtol=1e-12)
    np.testing.assert_allclose(s.sigma, np.cov(x64, rowvar=False, bias=True), rtol=1e-8, atol=1e-8)
    assert not s.has_features  # memory does not grow with the count


def test_capture_all_keeps_features_in_order():
    x = features(50)
    s = FeatureStats(capture_all=True, capture_mean_cov=False)
    for part in np.array_split(x, 3):
        s.append(torch.from_numpy(part))
    s.finish(Shard())
    assert torch.equal(s.features, torch.from_numpy(x))
    np.testing.assert_allclose(s.mu, x.astype(np.float64).mean(0), rtol=1e-12)


def test_npz_round_trip_and_foreign_files(tmp_path):
    x = features(40)
    s = FeatureStats(capture_all=True)
    s.append(torch.from_numpy(x))
    s.finish(Shard())
    s.meta = {"detector": "inception"}
    back = FeatureStats.load(s.save(tmp_path / "a.npz"))
    assert back.count == 40 and back.meta == {"detector": "inception"}
    np.testing.assert_array_equal(back.mu, s.mu)
    np.testing.assert_array_equal(back.sigma, s.sigma)
    assert torch.equal(back.features, s.features)
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        assert {"mu", "sigma", "count"} <= set(z.files)
    np.savez(tmp_path / "other.npz", mu=np.zeros(3), sigma=np.eye(3))  # e.g. another FID tool's reference file
    other = FeatureStats.load(tmp_path / "other.npz")
    assert other.count == 0 and other.sigma.shape == (3, 3)


@pytest.mark.parametrize("content,match", [
    (dict(mu=np.zeros(3)), "lack sigma"),
    (dict(mu=np.zeros(3), sigma=np.eye(4)), "sigma is"),
])
def test_bad_reference_files(tmp_path, content, match):
    np.savez(tmp_path / "bad.npz", **content)
    with pytest.raises(StyleGANError, match=match):
        FeatureStats.load(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_text("junk")
    with pytest.raises(StyleGANError, match="not a readable"):
        FeatureStats.load(tmp_path / "junk.npz")
    with pytest.raises(StyleGANError, match="do not exist"):
        FeatureStats.load(tmp_path / "missing.npz")


def test_gather_units_single_process_checks_the_count():
    rows = torch.arange(10.0).reshape(5, 2)
    assert torch.equal(gather_units(rows, np.array([2, 2, 1]), Shard()), rows)
    with pytest.raises(ValueError):
        gather_units(rows, np.array([2, 2]), Shard())


@pytest.mark.parametrize("capacity", [None, 50, 20])  # exact, and announced too small (falls back to a list)
def test_preallocated_capture_gives_the_same_features(capacity):
    x = features(50)
    s = FeatureStats(capture_all=True, capacity=capacity)
    for part in np.array_split(x, 4):
        s.append(torch.from_numpy(part))
    s.finish(Shard())
    assert torch.equal(s.features, torch.from_numpy(x)) and s.count == 50


def test_a_text_file_is_not_called_pickled_data(tmp_path):
    # numpy's own message for such a file suggests allow_pickle=True, which must never be the advice here.
    (tmp_path / "notes.npz").write_text("mu = 1, 2, 3\n")
    with pytest.raises(StyleGANError) as info:
        FeatureStats.load(tmp_path / "notes.npz")
    assert "not an .npz archive" in info.value.what and "pickle" not in str(info.value)
