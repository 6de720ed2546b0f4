"""--ref-stats from elsewhere: MMGeneration FID-Reals pickles, and the Inception variant that statistics
record (ours) or are taken to have (MMGeneration) checked against the FID metric's."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from stylegan.errors import StyleGANError
from stylegan.metrics import FeatureStats, evaluate, write_reference_stats
from stylegan.metrics.stats import reference_variant
from tests.detector_standins import write_detectors, write_pt_inception
from tests.metrics.conftest import make_dataset, tiny_generator


@pytest.fixture(scope="module")
def both_detectors(tmp_path_factory):
    folder = write_detectors(tmp_path_factory.mktemp("detectors"))
    write_pt_inception(folder)
    return folder


def fid_reals(path, dim=2048, seed=0, **extra):
    rng = np.random.RandomState(seed)
    x = rng.randn(64, dim)
    data = dict(mean=x.mean(0), cov=np.cov(x, rowvar=False), size=50000, name=path.name, **extra)
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return data


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_an_mmgeneration_fid_reals_pickle_is_read_as_data(tmp_path, protocol):
    path = tmp_path / "ffhq-256-50k-rgb.pkl"
    rng = np.random.RandomState(1)
    mean, cov = rng.randn(8), np.cov(rng.randn(20, 8), rowvar=False)
    with open(path, "wb") as f:
        pickle.dump({"mean": mean, "cov": cov, "size": np.int64(50000), "name": path.name}, f, protocol=protocol)
    stats = FeatureStats.load(path)
    assert np.array_equal(stats.mu, mean) and np.array_equal(stats.sigma, cov) and stats.count == 50000
    assert stats.meta["detector"] == "inception_pt" and stats.meta["detector_assumed"] is True


def test_exported_statistics_record_their_variant(tmp_path, both_detectors):
    G = tiny_generator()
    dataset = make_dataset(tmp_path, 3)
    evaluate("fid50k_full_pt@2", G, dataset, detector_dir=both_detectors, progress=False,
             export_stats=tmp_path / "pt.npz")
    assert FeatureStats.load(tmp_path / "pt.npz").meta["detector"] == "inception_pt"
    evaluate("fid50k_full@2", G, dataset, detector_dir=both_detectors, progress=False,
             export_stats=tmp_path / "nv.npz")
    assert FeatureStats.load(tmp_path / "nv.npz").meta["detector"] == "inception"


def test_the_variant_rule():
    ours_nv = FeatureStats.from_arrays(np.zeros(3), np.eye(3), 1, meta=dict(detector="inception"))
    mm = FeatureStats.from_arrays(np.zeros(3), np.eye(3), 1, meta=dict(detector="inception_pt", detector_assumed=True))
    bare = FeatureStats.from_arrays(np.zeros(3), np.eye(3), 1)
    assert reference_variant(ours_nv, "inception") == (None, None)
    assert "not inception_pt" in reference_variant(ours_nv, "inception_pt")[0]
    assert reference_variant(mm, "inception_pt")[0] is None and "MMGeneration" in reference_variant(mm, "inception_pt")[1]
    assert "MMGeneration" in reference_variant(mm, "inception")[0]
    for detector in ("inception", "inception_pt"):
        problem, note = reference_variant(bare, detector)
        assert problem is None and "do not record" in note


def test_fid_against_fid_reals_uses_its_mean_and_covariance(tmp_path, both_detectors):
    """The FID with an MMGeneration pickle equals the FID with the same numbers in an .npz of ours."""
    G = tiny_generator()
    path = tmp_path / "reals.pkl"
    data = fid_reals(path)
    warnings: list[str] = []
    [a] = evaluate("fid50k_full_pt@2", G, detector_dir=both_detectors, progress=False, ref_stats=path,
                   warn=warnings.append)
    npz = tmp_path / "same.npz"
    write_reference_stats(FeatureStats.from_arrays(data["mean"], data["cov"], 50000,
                                                   meta=dict(detector="inception_pt")), npz)
    [b] = evaluate("fid50k_full_pt@2", G, detector_dir=both_detectors, progress=False, ref_stats=npz)
    assert a.results == b.results and a.num_real == 50000
    assert any("MMGeneration" in w for w in warnings)


def test_statistics_of_the_other_variant_are_refused(tmp_path, both_detectors):
    G = tiny_generator()
    path = tmp_path / "reals.pkl"
    fid_reals(path)
    with pytest.raises(StyleGANError) as info:
        evaluate("fid50k_full@2", G, detector_dir=both_detectors, progress=False, ref_stats=path)
    assert "MMGeneration" in info.value.what and "fid50k_full_pt" in info.value.fix
