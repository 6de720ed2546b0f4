"""`metrics`, `mass-project` and `style-mix-video` on StyleGAN3 networks, from the command line.

The networks are tiny stylegan3-t / stylegan3-r generators with random weights whose images depend on the seed
(tests/web/conftest.py), written by the test as official pickles (tests/formats/sg3_writer.py); the detectors are the stand-ins (tests/detector_standins.py). Each
command's output is checked against something computed another way: FID/KID from the stand-in features of
images generated here by the documented protocol (formulas in numpy/scipy), projected ws rendered again by
``stylegan generate --projected-w``, video cells against ``generate`` and ``style-mix``.
"""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest
import torch

import stylegan
from stylegan.cli import main
from tests.detector_standins import write_detectors
from tests.explore_nets import read_gif
from tests.formats.sg3_writer import write_sg3_pickle
from tests.metrics.conftest import make_dataset
from tests.metrics.test_cli_metrics import generated_images, real_images
from tests.metrics.test_formulas import reference_fid, reference_kid
from tests.web.conftest import png_pixels, seed_dependent_sg3

RES = 16


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Detectors, a 16² RGB dataset, and a snapshot folder with a stylegan3-t and a stylegan3-r pickle."""
    root = tmp_path_factory.mktemp("sg3cmd")
    runs = root / "runs"
    runs.mkdir()
    nets = {}
    for kimg, config in [(0, "t"), (40, "r")]:
        G = seed_dependent_sg3(config, seed=kimg + 1, resolution=RES)
        nets[config] = write_sg3_pickle(runs / f"network-snapshot-{kimg:06d}.pkl", {"G_ema": G})
    gray = seed_dependent_sg3("t", seed=5, resolution=RES, img_channels=1)
    nets["gray"] = write_sg3_pickle(root / "gray.pkl", {"G_ema": gray})
    return {"root": root, "runs": runs, "nets": nets, "detectors": write_detectors(root / "detectors"),
            "data": make_dataset(root / "data", 24, size=RES)}


def cli(*args) -> None:
    assert main([str(a) for a in args]) == 0


def generated_png(tmp_path, *args) -> np.ndarray:
    """The one image ``stylegan generate *args`` writes."""
    out = tmp_path / f"gen{len(list(tmp_path.glob('gen*')))}"
    cli("generate", *args, "--outdir", out, "--quiet")
    (path,) = out.glob("*.png")
    return png_pixels(path.read_bytes())


@pytest.mark.parametrize("config", ["t", "r"])
def test_metrics_on_stylegan3(files, tmp_path, config):
    net, out = files["nets"][config], tmp_path / "m.jsonl"
    cli("metrics", "--network", net, "--data", files["data"], "--metrics", "fid50k_full@32,kid50k_full@32",
        "--seed", 2, "--detector-dir", files["detectors"], "--out", out, "--device", "cpu", "--quiet")
    lines = {d["metric"]: d for d in map(json.loads, out.read_text().splitlines())}

    # the same numbers from images generated here (the documented protocol) and textbook formulas
    G = stylegan.load_network(str(net))["G_ema"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        inception = torch.jit.load(str(files["detectors"] / "inception-2015-12-05.pt")).eval()
    with torch.no_grad():
        fr, fg = (inception(x, return_features=True).double().numpy()
                  for x in (real_images(files["data"]), generated_images(G, 32, seed=2)))
    fid = reference_fid(fg.mean(0), np.cov(fg, rowvar=False, bias=True), fr.mean(0), np.cov(fr, rowvar=False, bias=True))
    assert lines["fid50k_full@32"]["value"] == pytest.approx(fid, rel=1e-6)
    assert lines["kid50k_full@32"]["value"] == pytest.approx(reference_kid(fr, fg, 100, 1000, 2), rel=1e-6, abs=1e-9)


def test_mass_project_on_stylegan3(files, tmp_path):
    out = tmp_path / "mass"
    cli("mass-project", "--networks", files["runs"], "--data", files["data"], "--num-images", 1, "--num-steps", 3,
        "--detector-dir", files["detectors"], "--outdir", out, "--device", "cpu", "--quiet")
    rows = list(csv.DictReader((out / "metrics.csv").read_text().splitlines()))
    assert [(r["kimg"], r["image"]) for r in rows] == [("0", "00000/img00000000.png"), ("40", "00000/img00000000.png")]
    target = real_images(files["data"])[0].permute(1, 2, 0).numpy()
    for r in rows:
        pair = out / r["network"].rsplit(".", 1)[0] / "00000_img00000000"
        proj = png_pixels((pair / "proj.png").read_bytes())
        assert np.array_equal(png_pixels((pair / "target.png").read_bytes()), target)
        # the scores are those of the two files written (float64 re-derivation of MSE and PSNR)
        mse = np.mean((proj.astype(np.float64) - target) ** 2)
        assert float(r["mse"]) == pytest.approx(mse, rel=1e-9)
        assert float(r["psnr"]) == pytest.approx(10 * np.log10(255 ** 2 / mse), rel=1e-9)
        # proj.png is the projected w's image in the official projector's bytes, (x + 1) * 127.5 truncated ...
        snapshot = files["runs"] / r["network"]
        G = stylegan.load_network(str(snapshot))["G_ema"]
        w = np.load(pair / "projected_w.npz")["w"]
        assert w.shape == (1, G.num_ws, G.w_dim)
        with torch.no_grad():
            x = G.synthesis(torch.from_numpy(w), noise_mode="const")[0].permute(1, 2, 0).double().numpy()
        assert np.array_equal(proj, np.floor(np.clip((x + 1) * 127.5, 0, 255)).astype(np.uint8))
        # ... and generate --projected-w, which maps x * 127.5 + 128, gives it within one level
        again = generated_png(tmp_path, "--network", snapshot, "--projected-w", pair / "projected_w.npz")
        assert np.abs(again.astype(int) - proj).max() <= 1


def test_style_mix_video_on_stylegan3(files, tmp_path):
    """A GIF of a grayscale network is lossless: frame 0's cells equal generate's and style-mix's images."""
    net, gif = files["nets"]["gray"], tmp_path / "mix.gif"
    cli("style-mix-video", "--network", net, "--row-seed", "3", "--col-seeds", "5,6", "--col-styles", "0-2",
        "--duration-sec", "1", "--fps", "4", "--output", gif, "--quiet")
    durations, frames = read_gif(gif)
    assert durations == [250] * 4 and frames.shape == (4, 2 * RES, 3 * RES, 3)
    frames = frames[..., 0].astype(int)  # gray: the three channels are equal

    def cell(f: int, row: int, col: int) -> np.ndarray:
        return frames[f, row * RES:(row + 1) * RES, col * RES:(col + 1) * RES]

    mixes = tmp_path / "mix"
    cli("style-mix", "--network", net, "--rows", 3, "--cols", "5,6", "--styles", "0-2", "--trunc", 0.7,
        "--outdir", mixes, "--quiet")
    for f in range(4):
        assert np.abs(cell(f, 1, 0) - generated_png(tmp_path, "--network", net, "--seeds", 3, "--trunc", 0.7)).max() <= 1
    for j, seed in enumerate((5, 6)):  # the walks start at the column seeds
        assert np.abs(cell(0, 0, j + 1) - generated_png(tmp_path, "--network", net, "--seeds", seed,
                                                        "--trunc", 0.7)).max() <= 1
        assert np.abs(cell(0, 1, j + 1) - png_pixels((mixes / f"3-{seed}.png").read_bytes())).max() <= 1
    assert not frames[:, :RES, :RES].any()  # the corner has no seed
    assert not np.array_equal(cell(0, 1, 1), cell(0, 1, 2))  # the columns' styles reach the mixed cells
    assert not np.array_equal(cell(0, 0, 1), cell(3, 0, 1))  # the columns move
