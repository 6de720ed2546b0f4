"""Hostile and mismatched metric inputs from other ecosystems, through `stylegan metrics`: FID-Reals pickles
that hold more than arrays, statistics of the wrong Inception variant or size, and .pth detector files that
are not the detector. Each is one `error:` line (exit 2), nothing in a file runs, and nothing is written."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from stylegan.formats import save_network
from stylegan.networks import Generator
from tests.detector_standins import (
    pt_inception_state,
    write_detectors,
    write_pt_inception,
)
from tests.hostile.harness import run_refused


class _Payload:
    """Pickles as os.system('touch MARKER'): what a malicious FID-Reals file would run on plain pickle.load."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    torch.manual_seed(0)
    G = Generator(z_dim=8, w_dim=8, c_dim=0, img_resolution=16, img_channels=3,
                  mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(channel_base=64, channel_max=16))
    path = tmp_path_factory.mktemp("net") / "tiny.safetensors"
    save_network({"G_ema": G}, path)
    return str(path)


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
    folder = write_detectors(tmp_path_factory.mktemp("detectors"))
    write_pt_inception(folder)
    return folder


def metrics(network, detector_dir, *args) -> list[str]:
    return ["metrics", "--network", network, "--detector-dir", str(detector_dir), "--quiet", *map(str, args)]


def test_a_fid_reals_pickle_holding_code_is_refused_and_nothing_runs(tmp_path, network, detectors):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"mean": np.zeros(4), "cov": np.eye(4), "size": _Payload(str(marker))}, protocol=2))
    run_refused(metrics(network, detectors, "--metrics", "fid50k_full_pt@2", "--ref-stats", path,
                        "--out", tmp_path / "out.jsonl"), cwd=tmp_path, expect="posix.system")
    assert not marker.exists() and not (tmp_path / "out.jsonl").exists()


def test_statistics_of_the_other_variant_are_refused(tmp_path, network, detectors):
    path = tmp_path / "ffhq-256-50k-rgb.pkl"
    x = np.random.RandomState(0).randn(10, 2048)
    path.write_bytes(pickle.dumps({"mean": x.mean(0), "cov": np.cov(x, rowvar=False), "size": 10, "name": "x"}))
    line = run_refused(metrics(network, detectors, "--metrics", "fid50k_full@2", "--ref-stats", path,
                               "--out", tmp_path / "out.jsonl"), cwd=tmp_path, expect="MMGeneration")
    assert "fid50k_full_pt" in line and not (tmp_path / "out.jsonl").exists()


def test_statistics_of_another_size_are_refused(tmp_path, network, detectors):
    path = tmp_path / "small.pkl"
    path.write_bytes(pickle.dumps({"mean": np.zeros(16), "cov": np.eye(16), "size": 10, "name": "x"}))
    run_refused(metrics(network, detectors, "--metrics", "fid50k_full_pt@2", "--ref-stats", path),
                cwd=tmp_path, expect="have 16 features")


@pytest.mark.parametrize("change, expect", [
    ("missing", "1 missing ('Mixed_7c.branch_pool.bn.running_var')"),
    ("extra", "1 unexpected ('AuxLogits.fc.weight')"),
    ("shape", "'fc.weight' has shape [1000, 2048], expected [1008, 2048]"),
    ("other", "its keys differ"),
])
def test_a_pth_that_is_not_the_detector_is_refused(tmp_path, network, change, expect):
    state = pt_inception_state(seed=0)
    if change == "missing":
        del state["Mixed_7c.branch_pool.bn.running_var"]
    elif change == "extra":
        state["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
    elif change == "shape":
        state["fc.weight"] = torch.zeros(1000, 2048)
    else:  # a torchvision VGG16-like state dict under the Inception's name
        state = {"features.0.weight": torch.zeros(64, 3, 3, 3), "classifier.0.bias": torch.zeros(4096)}
    folder = tmp_path / "detectors"
    write_pt_inception(folder, state)
    run_refused(metrics(network, folder, "--metrics", "fid50k_full_pt@2", "--ref-stats", _ok_stats(tmp_path)),
                cwd=tmp_path, expect=expect)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "legacy"])
def test_a_corrupt_or_unreadable_pth_is_refused(tmp_path, network, damage):
    folder = tmp_path / "detectors"
    path = write_pt_inception(folder, {"fc.bias": torch.zeros(1008)})
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-4000])
        expect = "pt_inception-2015-12-05-6726825d.pth"
    elif damage == "garbage":
        path.write_bytes(b"\x00" * 100)
        expect = "not a torch.save file"
    else:
        # legacy torch.save files are read (as the real detector weights are): this one is refused for its keys
        torch.save({"fc.bias": torch.zeros(1008)}, path, _use_new_zipfile_serialization=False)
        expect = "its keys differ"
    run_refused(metrics(network, folder, "--metrics", "fid50k_full_pt@2", "--ref-stats", _ok_stats(tmp_path)),
                cwd=tmp_path, expect=expect)


def _ok_stats(tmp_path):
    path = tmp_path / "ok.npz"
    np.savez(path, mu=np.zeros(2048), sigma=np.eye(2048))
    return path
