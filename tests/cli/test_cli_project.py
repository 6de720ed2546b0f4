"""`stylegan project`, `stylegan mass-project`, and `style-mix` with projected-W files, from the command line."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import numpy as np
import PIL.Image
import pytest

import stylegan
from tests.cli.conftest import small_generator
from tests.detector_standins import write_detectors
from tests.explore_nets import read_mp4


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
    return write_detectors(tmp_path_factory.mktemp("detectors"))


def read_png(path):
    with PIL.Image.open(path) as f:
        a = np.asarray(f)
    return a[:, :, None] if a.ndim == 2 else a


def photo(path, w=30, h=20, mode="RGBA", seed=0):
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = np.random.RandomState(seed).randint(0, 256, size=(h, w, channels)).astype(np.uint8)
    PIL.Image.fromarray(arr[:, :, 0] if channels == 1 else arr, mode).save(path)
    return path


def test_project_an_image_then_generate_from_it(run, uncond_network, detectors, tmp_path):
    target = photo(tmp_path / "me.png")  # RGBA and not square: composited, cropped, resized to 16×16
    out = tmp_path / "proj"
    r = run("project", "--network", uncond_network, "--target", target, "--num-steps", "6", "--num-snapshots", "2",
            "--detector-dir", detectors, "--outdir", out, "--quiet")
    assert r.code == 0, r.err
    assert "PSNR" in r.out and "LPIPS" in r.out
    assert {p.name for p in out.iterdir()} == {"target.png", "proj.png", "projected_w.npz", "proj.mp4", "steps",
                                               "projection.json"}
    assert read_png(out / "target.png").shape == (16, 16, 3)
    meta, frames = read_mp4(out / "proj.mp4")
    assert len(frames) == 6 and meta["size"] == (32, 16) and meta["fps"] == 10

    r = run("generate", "--network", uncond_network, "--projected-w", out / "projected_w.npz", "--outdir",
            tmp_path / "gen", "--quiet")
    assert r.code == 0, r.err
    # generate maps bytes as x·127.5 + 128, the projector as (x + 1)·127.5 (both official): at most 1 apart.
    diff = read_png(tmp_path / "gen" / "proj00.png").astype(int) - read_png(out / "proj.png")
    assert diff.min() >= 0 and diff.max() <= 1


def test_project_seeds_and_folders(run, uncond_network, detectors, tmp_path):
    r = run("project", "--network", uncond_network, "--seeds", "3,4", "--num-steps", "3", "--no-save-video",
            "--detector-dir", detectors, "--outdir", tmp_path / "seeds", "--quiet")
    assert r.code == 0, r.err
    assert sorted(p.name for p in (tmp_path / "seeds").iterdir()) == ["seed0003", "seed0004"]
    # A rerun skips what is done; other options redo it.
    args = ["project", "--network", uncond_network, "--seeds", "3-5", "--num-steps", "3", "--no-save-video",
            "--detector-dir", detectors, "--outdir", tmp_path / "seeds", "--quiet"]
    r = run(*args)
    assert r.code == 0 and r.out.count("skipped") == 2 and "seed0005:" in r.out, r.out
    r = run(*args[:6], "4", *args[7:])
    assert r.code == 0 and "skipped" not in r.out
    r = run("generate", "--network", uncond_network, "--seeds", "3", "--outdir", tmp_path / "g", "--quiet")
    np.testing.assert_array_equal(read_png(tmp_path / "seeds" / "seed0003" / "target.png"),
                                  read_png(tmp_path / "g" / "seed0003.png"))  # the target is the network's image

    with zipfile.ZipFile(tmp_path / "d.zip", "w") as z:
        for i in range(2):
            z.write(photo(tmp_path / f"p{i}.png", 16, 16, "L", seed=i), f"00000/img{i:08d}.png")
    r = run("project", "--network", uncond_network, "--target", tmp_path / "d.zip", "--num-steps", "2",
            "--no-save-video", "--detector-dir", detectors, "--outdir", tmp_path / "zip", "--quiet")
    assert r.code == 0, r.err
    assert sorted(p.name for p in (tmp_path / "zip").iterdir()) == ["00000_img00000000", "00000_img00000001"]
    assert (tmp_path / "zip" / "00000_img00000001" / "projected_w.npz").is_file()


@pytest.mark.parametrize("make, args, message", [
    (lambda d: (d / "t.png").write_text("not an image"), ["--target", "{d}/t.png"], "not a readable image"),
    (lambda d: None, ["--target", "{d}/missing.png"], "does not exist"),
    (lambda d: None, ["--seeds", "1", "--target", "{d}/x.png"], "exactly one of target (--target) and seeds (--seeds)"),
    (lambda d: None, [], "exactly one of target (--target) and seeds (--seeds)"),
    (lambda d: photo(d / "t.png"), ["--target", "{d}/t.png", "--detector-dir", "{d}"], "vgg16.pt is not in"),
])
def test_project_errors(run, uncond_network, detectors, tmp_path, make, args, message):
    make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    args = [a.replace("{d}", str(tmp_path)) for a in args]
    if "--detector-dir" not in args:
        args += ["--detector-dir", str(detectors)]
    r = run("project", "--network", uncond_network, *args, "--num-steps", "2", "--outdir", tmp_path / "out", "--quiet")
    assert r.code == 2 and message in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output folder left behind


def test_project_without_ffmpeg_points_to_no_save_video(run, uncond_network, detectors, tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "nothing"))
    r = run("project", "--network", uncond_network, "--seeds", "1", "--detector-dir", detectors,
            "--outdir", tmp_path / "out", "--quiet")
    assert r.code == 2 and "(turn off save_video (--no-save-video), or point $IMAGEIO_FFMPEG_EXE" in r.err
    assert not (tmp_path / "out").exists()


def test_w_plus_saves_one_w_per_layer(run, uncond_network, detectors, tmp_path):
    def projected_w(*flags):
        out = tmp_path / ("plus" if flags else "plain")
        r = run("project", "--network", uncond_network, "--seeds", "3", "--num-steps", "4", "--no-save-video",
                *flags, "--detector-dir", detectors, "--outdir", out, "--quiet")
        assert r.code == 0, r.err
        with np.load(out / "seed0003" / "projected_w.npz") as f:
            return f["w"]

    plain, plus = projected_w(), projected_w("--w-plus")
    assert plain.shape == plus.shape == (1, 6, 16) and plus.dtype == np.float32  # the small network has 6 ws
    assert all(np.array_equal(plain[0, 0], row) for row in plain[0])  # W: one w repeated for every layer
    # W+: each layer's w moved on its own (after the first step each row gets its own gradient).
    assert len({row.tobytes() for row in plus[0]}) == plus.shape[1]
    info = json.loads((tmp_path / "plus" / "seed0003" / "projection.json").read_text())
    assert info["options"]["w_plus"] is True


def test_style_mix_with_projected_rows(run, uncond_network, detectors, tmp_path):
    for seed in (3, 4):
        r = run("project", "--network", uncond_network, "--seeds", seed, "--num-steps", "2", "--no-save-video",
                "--detector-dir", detectors, "--outdir", tmp_path / "p", "--quiet")
        assert r.code == 0, r.err
    rows = f"{tmp_path}/p/seed0003/projected_w.npz,{tmp_path}/p/seed0004/projected_w.npz"
    r = run("style-mix", "--network", uncond_network, "--rows", rows, "--cols", "1,2", "--styles", "0-1",
            "--outdir", tmp_path / "mix", "--quiet")
    assert r.code == 0, r.err
    names = {p.name for p in (tmp_path / "mix").iterdir()}
    assert {"seed0003-1.png", "seed0004-2.png", "seed0003-seed0003.png", "grid.png"} <= names
    # The unmixed row image is exactly what the saved ws render to.
    r = run("generate", "--network", uncond_network, "--projected-w", f"{tmp_path}/p/seed0003/projected_w.npz",
            "--outdir", tmp_path / "g", "--quiet")
    np.testing.assert_array_equal(read_png(tmp_path / "mix" / "seed0003-seed0003.png"),
                                  read_png(tmp_path / "g" / "proj00.png"))


def test_style_mix_rejects_bad_npz(run, uncond_network, tmp_path):
    np.savez(tmp_path / "bad.npz", w=np.zeros([1, 3, 16], np.float32))
    np.savez(tmp_path / "nows.npz", x=np.zeros([1], np.float32))
    for rows, message in [(tmp_path / "bad.npz", "expected [N, 6, 16]"), (tmp_path / "nows.npz", "no array named 'w'")]:
        r = run("style-mix", "--network", uncond_network, "--rows", rows, "--cols", "1", "--styles", "0-1",
                "--outdir", tmp_path / "o")
        assert r.code == 2 and message in r.err and not (tmp_path / "o").exists(), r.err


def test_mass_project_and_resume(run, uncond_network, detectors, tmp_path):
    runs = tmp_path / "run"
    runs.mkdir()
    for kimg in (20, 0):
        (runs / f"network-snapshot-{kimg:06d}.safetensors").write_bytes(uncond_network.read_bytes())
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        photo(data / f"{i}.png", 16, 16, "RGB", seed=i)
    args = ["mass-project", "--networks", runs, "--data", data, "--num-images", "2", "--num-steps", "2",
            "--detector-dir", detectors, "--outdir", tmp_path / "m", "--quiet"]
    r = run(*args)
    assert r.code == 0, r.err
    assert "4 to project" in r.err and "4 projections" in r.out
    rows = list(csv.DictReader((tmp_path / "m" / "metrics.csv").read_text().splitlines()))
    assert [r["kimg"] for r in rows] == ["0", "0", "20", "20"] and all(r["lpips"] for r in rows)
    assert {f"plot-{m}.png" for m in ("psnr", "ssim", "mse", "lpips")} <= {p.name for p in (tmp_path / "m").iterdir()}
    r = run(*args)
    assert r.code == 0 and "0 to project, 4 already done" in r.err
    r = run(*args[:-5], "--seed", "1", *args[-5:])
    assert r.code == 2 and "other projector options" in r.err


@pytest.fixture(scope="module")
def cond_network(tmp_path_factory):
    path = tmp_path_factory.mktemp("cond") / "cond.safetensors"
    stylegan.save_network({"G_ema": small_generator(3)}, path)
    return path


def labelled_zip(path, labels):
    """A dataset ZIP of 16×16 RGB images with a dataset.json; ``labels[i]`` None leaves image i out of it."""
    with zipfile.ZipFile(path, "w") as z:
        for i in range(len(labels)):
            buf = io.BytesIO()
            PIL.Image.fromarray(np.random.RandomState(i).randint(0, 256, (16, 16, 3)).astype(np.uint8)).save(buf, "PNG")
            z.writestr(f"00000/img{i:08d}.png", buf.getvalue())
        z.writestr("dataset.json", json.dumps(
            {"labels": [[f"00000/img{i:08d}.png", c] for i, c in enumerate(labels) if c is not None]}))
    return path


def test_conditional_project_takes_each_targets_class_from_the_dataset(run, cond_network, detectors, tmp_path):
    data = labelled_zip(tmp_path / "d.zip", [2, 0, 1, 1])
    out = tmp_path / "p"
    r = run("project", "--network", cond_network, "--target", data, "--max-images", "3", "--num-steps", "2",
            "--no-save-video", "--detector-dir", detectors, "--outdir", out, "--quiet")
    assert r.code == 0, r.err
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert [p.name for p in folders] == [f"00000_img{i:08d}" for i in range(3)]  # --max-images 3 of 4
    assert [json.loads((p / "projection.json").read_text())["options"]["class"] for p in folders] == [2, 0, 1]
    # --class wins over the labels.
    r = run("project", "--network", cond_network, "--target", data, "--max-images", "1", "--class", "1",
            "--num-steps", "2", "--no-save-video", "--detector-dir", detectors, "--outdir", tmp_path / "q", "--quiet")
    assert r.code == 0, r.err
    assert json.loads((tmp_path / "q" / "00000_img00000000" / "projection.json").read_text())["options"]["class"] == 1


@pytest.mark.parametrize("labels, message", [
    ([0, None], "has no class label"),   # an image missing from dataset.json
    ([0, 5], "has class 5 in dataset.json, but the network has 3 classes"),
    ([[0.5], [1.0]], "has a label vector"),
])
def test_conditional_project_without_a_usable_class_fails_before_projecting(run, cond_network, detectors, tmp_path,
                                                                             labels, message):
    data = labelled_zip(tmp_path / "d.zip", labels)
    r = run("project", "--network", cond_network, "--target", data, "--num-steps", "2", "--no-save-video",
            "--detector-dir", detectors, "--outdir", tmp_path / "p", "--quiet")
    assert r.code == 2 and message in r.err and "pick one with class_idx (--class)" in r.err
    assert "Traceback" not in r.err and not (tmp_path / "p").exists()


def test_max_images_needs_a_target_folder_or_zip(run, uncond_network, tmp_path):
    r = run("project", "--network", uncond_network, "--seeds", "1", "--max-images", "2", "--outdir", tmp_path / "p")
    assert r.code == 2 and "max_images (--max-images) applies to a target (--target) folder or ZIP" in r.err


def test_mass_project_uses_dataset_classes_for_a_conditional_network(run, cond_network, detectors, tmp_path):
    runs = tmp_path / "run"
    runs.mkdir()
    (runs / "network-snapshot-000000.safetensors").write_bytes(cond_network.read_bytes())
    good = labelled_zip(tmp_path / "good.zip", [1, 2])
    r = run("mass-project", "--networks", runs, "--data", good, "--num-images", "2", "--num-steps", "2",
            "--detector-dir", detectors, "--outdir", tmp_path / "m", "--quiet")
    assert r.code == 0, r.err
    bad = labelled_zip(tmp_path / "bad.zip", [1, None])
    r = run("mass-project", "--networks", runs, "--data", bad, "--num-images", "2", "--num-steps", "2",
            "--detector-dir", detectors, "--outdir", tmp_path / "n", "--quiet")
    assert r.code == 2 and "has no class label" in r.err


def test_a_broken_dataset_json_matters_only_to_a_conditional_network(run, uncond_network, cond_network, detectors,
                                                                      tmp_path):
    data = tmp_path / "photos"
    data.mkdir()
    photo(data / "a.png", 16, 16, "RGB")
    (data / "dataset.json").write_text("{not json")
    common = ["--target", data, "--num-steps", "2", "--no-save-video", "--detector-dir", detectors, "--quiet"]
    r = run("project", "--network", uncond_network, *common, "--outdir", tmp_path / "u")
    assert r.code == 0, r.err
    r = run("project", "--network", cond_network, *common, "--outdir", tmp_path / "c")
    assert r.code == 2 and "dataset.json is not valid JSON" in r.err and "Traceback" not in r.err
