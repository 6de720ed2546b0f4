"""Bad input to `stylegan metrics`: exit code 2, one line 'error: what (fix)', no traceback, no files written."""

from __future__ import annotations

import numpy as np
import pytest

import stylegan
from stylegan.errors import StyleGANError
from tests.metrics.conftest import make_dataset, tiny_generator


def assert_clean_error(r, match):
    assert r.code == 2, (r.code, r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.err
    assert "Traceback" not in r.err and lines[0].rstrip().endswith(")")
    assert match in lines[0], lines[0]


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_nets")
    paths = {}
    for name, G in [("cond", tiny_generator(c_dim=3)), ("gray", tiny_generator(channels=1)),
                    ("big", tiny_generator(resolution=32))]:
        paths[name] = root / f"{name}.safetensors"
        stylegan.save_network({"G_ema": G}, paths[name])
    return paths


def test_unknown_metric_lists_the_known_ones(run, network_file, dataset, tmp_path):
    out = tmp_path / "m.jsonl"
    r = run("metrics", "--network", network_file, "--data", dataset, "--metrics", "fid50k_full,fid_infinity",
            "--out", out)
    assert_clean_error(r, "unknown metric 'fid_infinity' (known metrics: fid50k_full, kid50k_full, pr50k3_full, "
                          "ppl2_wend, is50k, fid50k, kid50k, pr50k3, ppl_zfull, ppl_wfull, ppl_zend, ppl_wend, "
                          "fid50k_full_pt, fid50k_pt, pr50k3_full_pt, pr50k3_pt, ls)")
    assert not out.exists()


@pytest.mark.parametrize("net,match", [
    ("big", "resolution 16 vs 32"),
    ("gray", "channels 3 vs 1"),
    ("cond", "labels: none vs c_dim 3"),
])
def test_dataset_must_fit_the_network(run, nets, dataset, detector_dir, tmp_path, net, match):
    out = tmp_path / "m.jsonl"
    r = run("metrics", "--network", nets[net], "--data", dataset, "--metrics", "fid50k_full@8",
            "--detector-dir", detector_dir, "--out", out)
    assert_clean_error(r, match)
    assert not out.exists()


def test_class_count_must_match(run, nets, tmp_path, detector_dir):
    four = make_dataset(tmp_path, 8, classes=4)
    assert_clean_error(run("metrics", "--network", nets["cond"], "--data", four, "--metrics", "is50k@10",
                           "--detector-dir", detector_dir), "labels: 4 vs c_dim 3")


def test_too_few_real_images_for_a_legacy_metric(run, network_file, dataset, detector_dir):
    r = run("metrics", "--network", network_file, "--data", dataset, "--metrics", "fid50k@100",
            "--detector-dir", detector_dir)
    assert_clean_error(r, "fid50k@100 compares with 50000 real images, but dataset data has only 40 (use fid50k_full")
    tiny = make_dataset(dataset.parent / "tiny", 3)
    assert_clean_error(run("metrics", "--network", network_file, "--data", tiny, "--metrics", "pr50k3_full@8",
                           "--detector-dir", detector_dir), "needs at least 4 real images")


def test_missing_detector_offline(run, network_file, dataset, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run("metrics", "--network", network_file, "--data", dataset, "--metrics", "fid50k_full@8",
            "--detector-dir", empty)
    assert_clean_error(r, f"feature detector inception-2015-12-05.pt is not in {empty}")
    monkeypatch.setenv("STYLEGAN_DETECTOR_DIR", str(empty))
    assert_clean_error(run("metrics", "--network", network_file, "--metrics", "ppl_wend@2"),
                       "feature detector vgg16.pt is not in")

    def offline(url, progress=True, validate=None):
        raise StyleGANError(f"cannot download {url}: no network", "check the connection")

    monkeypatch.delenv("STYLEGAN_DETECTOR_DIR")
    monkeypatch.setattr("stylegan.metrics.detectors.download", offline)
    r = run("metrics", "--network", network_file, "--data", dataset, "--metrics", "fid50k_full@8")
    assert_clean_error(r, "cannot get feature detector inception-2015-12-05.pt")
    assert "pass its folder as detector_dir (--detector-dir) or $STYLEGAN_DETECTOR_DIR" in r.err
    assert "https://nvlabs-fi-cdn.nvidia.com/" in r.err


def test_corrupt_detector(run, network_file, dataset, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "inception-2015-12-05.pt").write_bytes(b"not torchscript")
    r = run("metrics", "--network", network_file, "--data", dataset, "--metrics", "fid50k_full@8",
            "--detector-dir", bad)
    assert_clean_error(r, "is not a readable TorchScript file")


def test_missing_dataset(run, network_file, nets, detector_dir, tmp_path):
    assert_clean_error(run("metrics", "--network", network_file, "--metrics", "fid50k_full@8",
                           "--detector-dir", detector_dir), "no dataset was given")
    assert_clean_error(run("metrics", "--network", nets["cond"], "--metrics", "is50k@10",
                           "--detector-dir", detector_dir), "the network is conditional (c_dim 3)")
    assert_clean_error(run("metrics", "--network", network_file, "--data", tmp_path / "nope.zip",
                           "--metrics", "fid50k_full@8", "--detector-dir", detector_dir), "does not exist")


def test_unwritable_outputs_fail_before_any_work(run, network_file, dataset, detector_dir, tmp_path):
    r = run("metrics", "--network", network_file, "--data", dataset, "--metrics", "fid50k_full@8",
            "--detector-dir", detector_dir, "--out", tmp_path / "no" / "such" / "m.jsonl")
    assert_clean_error(r, "--out")
    r = run("metrics", "--data", dataset, "--export-stats", tmp_path, "--detector-dir", detector_dir)
    assert r.code == 2 and "Traceback" not in r.err


def test_bad_reference_statistics(run, network_file, dataset, detector_dir, tmp_path):
    ref = tmp_path / "ref.npz"
    np.savez(ref, mu=np.zeros(5), sigma=np.eye(5))  # 5 features; the stand-in Inception gives 16
    r = run("metrics", "--network", network_file, "--metrics", "fid50k_full@8", "--detector-dir", detector_dir,
            "--ref-stats", ref)
    assert_clean_error(r, "reference statistics have 5 features but the Inception detector gives 16")
    assert "generated images" not in r.err  # found before any work
    assert_clean_error(run("metrics", "--network", network_file, "--metrics", "fid50k_full@8",
                           "--ref-stats", tmp_path / "missing.npz"), "do not exist")


def test_a_folder_that_refuses_files_fails_before_any_work(run, network_file, dataset, detector_dir):
    # /proc is a folder that os.access calls writable for root, yet no file can be made in it.
    for option, name in (("--out", "/proc/m.jsonl"), ("--export-stats", "/proc/ref.npz")):
        r = run("metrics", "--network", network_file, "--data", dataset, "--metrics", "fid50k_full@8",
                "--detector-dir", detector_dir, option, name)
        assert_clean_error(r, f"{option} {name}: folder /proc does not exist or is not writable")
        assert "fid50k_full" not in r.out  # refused before computing
