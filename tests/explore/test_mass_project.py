"""Mass projection: snapshots in kimg order, one scored row per pair, tables and plots, resuming."""

from __future__ import annotations

import csv
import json

import numpy as np
import PIL.Image
import pytest

import stylegan
import stylegan.explore.mass_project as mp
from stylegan.errors import StyleGANError
from stylegan.explore.mass_project import find_snapshots, mass_project
from stylegan.explore.projector import ProjectorConfig
from stylegan.explore.quality import psnr
from stylegan.metrics.detectors import load_detector
from tests.detector_standins import write_detectors
from tests.explore_nets import tiny_generator


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("mass")
    runs = root / "run"
    runs.mkdir()
    for kimg, seed in [(40, 2), (0, 1), (200, 3)]:  # written out of order on purpose
        stylegan.save_network({"G_ema": tiny_generator(seed=seed)}, runs / f"network-snapshot-{kimg:06d}.safetensors")
    (runs / "notes.txt").write_text("not a network")
    data = root / "data"
    data.mkdir()
    rng = np.random.RandomState(0)
    for i in range(3):
        PIL.Image.fromarray(rng.randint(0, 256, size=(20, 20, 3)).astype(np.uint8)).save(data / f"img{i}.png")
    vgg = load_detector("vgg16", detector_dir=write_detectors(root / "detectors"))
    return runs, data, vgg


def load(path):
    return stylegan.load_network(str(path))["G_ema"]


def test_snapshots_in_kimg_order(setup):
    runs, _, _ = setup
    assert [s.kimg for s in find_snapshots(runs)] == [0, 40, 200]
    with pytest.raises(StyleGANError, match="no network snapshots"):
        find_snapshots(setup[1])
    with pytest.raises(StyleGANError, match=r"^networks \(--networks\) \S+missing is not a folder"):
        find_snapshots(runs / "missing")


def test_bad_num_images_names_the_argument(setup, tmp_path):
    runs, data, vgg = setup
    with pytest.raises(StyleGANError, match=r"^num_images \(--num-images\) is 0, but must be at least 1 "
                                            r"\(project at least 1 image\)$"):
        mass_project(runs, data, 0, tmp_path / "out", load_generator=load, detector=vgg, progress=False)
    assert not (tmp_path / "out").exists()
    (tmp_path / "state.json").write_text("not json")
    with pytest.raises(StyleGANError, match="is not a mass-project state file") as info:
        mass_project(runs, data, 1, tmp_path, load_generator=load, detector=vgg, progress=False)
    assert info.value.fix == "remove it, or choose another outdir (--outdir)"


def test_tables_and_resume(setup, tmp_path, monkeypatch):
    runs, data, vgg = setup
    calls = []
    real_project = mp.project
    monkeypatch.setattr(mp, "project", lambda *a, **k: calls.append(1) or real_project(*a, **k))
    config = ProjectorConfig(num_steps=3, w_avg_samples=200)
    kwargs = dict(load_generator=load, detector=vgg, config=config, progress=False, log=lambda text: None)
    state = mass_project(runs, data, 2, tmp_path, **kwargs)
    assert len(calls) == 6 and len(state["results"]) == 6

    rows = list(csv.DictReader((tmp_path / "metrics.csv").read_text().splitlines()))
    pairs = [(k, i) for k in ("0", "40", "200") for i in ("img0.png", "img1.png")]
    assert [(r["kimg"], r["image"]) for r in rows] == pairs
    # Each score belongs to its pair: recompute PSNR from the files written for it.
    for r in rows:
        pair = tmp_path / r["network"].replace(".safetensors", "") / r["image"].replace(".png", "")
        target, proj = (np.asarray(PIL.Image.open(pair / n)) for n in ("target.png", "proj.png"))
        assert float(r["psnr"]) == pytest.approx(psnr(target, proj), rel=1e-9)
        assert 0 < float(r["lpips"]) and -1 <= float(r["ssim"]) <= 1
    means = list(csv.DictReader((tmp_path / "metrics-mean.csv").read_text().splitlines()))
    assert [m["kimg"] for m in means] == ["0", "40", "200"]
    for m in means:
        mine = [float(r["mse"]) for r in rows if r["kimg"] == m["kimg"]]
        assert float(m["mse"]) == pytest.approx(np.mean(mine)) and m["num_images"] == "2"
    table = json.loads((tmp_path / "metrics.json").read_text())
    assert len(table["per_image"]) == 6 and len(table["per_snapshot"]) == 3
    for metric in ("psnr", "ssim", "mse", "lpips"):
        with PIL.Image.open(tmp_path / f"plot-{metric}.png") as f:
            assert f.format == "PNG" and f.size[0] > 100

    # A rerun projects nothing; asking for one more image projects just that image on every snapshot.
    calls.clear()
    mass_project(runs, data, 2, tmp_path, **kwargs)
    assert calls == []
    state = mass_project(runs, data, 3, tmp_path, **kwargs)
    assert len(calls) == 3 and len(state["results"]) == 9
    with pytest.raises(StyleGANError, match="other projector options") as info:
        mass_project(runs, data, 3, tmp_path, **{**kwargs, "config": ProjectorConfig(num_steps=4, w_avg_samples=200)})
    assert info.value.fix == ("rerun with the same config (--num-steps/--w-plus), seed (--seed) and class_idx (--class), "
                              "or choose another outdir (--outdir)")


def test_interrupted_run_keeps_finished_pairs(setup, tmp_path, monkeypatch):
    runs, data, vgg = setup
    real_project, calls = mp.project, []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_project(*a, **k)

    monkeypatch.setattr(mp, "project", flaky)
    kwargs = dict(load_generator=load, detector=vgg, config=ProjectorConfig(num_steps=2, w_avg_samples=100),
                  progress=False, log=lambda text: None)
    with pytest.raises(KeyboardInterrupt):
        mass_project(runs, data, 1, tmp_path, **kwargs)
    saved = json.loads((tmp_path / "state.json").read_text())
    assert [r["kimg"] for r in saved["results"]] == [0, 40]
    assert not list(tmp_path.glob(".*.tmp"))
    calls.clear()
    monkeypatch.setattr(mp, "project", lambda *a, **k: calls.append(1) or real_project(*a, **k))
    state = mass_project(runs, data, 1, tmp_path, **kwargs)
    assert len(calls) == 1 and [r["kimg"] for r in state["results"]] == [0, 40, 200]
