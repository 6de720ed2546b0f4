"""Every command on a StyleGAN (v1) and a StyleGAN2-TF network file: info, convert, generate, style-mix."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

import stylegan
from stylegan.cli import main
from tests.formats.tf_writer import stylegan1_snapshot, stylegan2_snapshot, write_tf_pickle

FILES = {
    "v1": (lambda: stylegan1_snapshot(0, c_dim=0), "StyleGAN (v1) TensorFlow pickle", "StyleGAN (v1)"),
    "v2": (lambda: stylegan2_snapshot(0, architecture="resnet"), "StyleGAN2 TensorFlow pickle", "StyleGAN2"),
    "v2-cond": (lambda: stylegan2_snapshot(0, c_dim=3), "StyleGAN2 TensorFlow pickle", "StyleGAN2"),
}


@pytest.fixture(scope="module")
def tf_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tf")
    return {name: write_tf_pickle(d / f"{name}.pkl", make()) for name, (make, _, _) in FILES.items()}


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name", list(FILES))
def test_info_names_format_and_family(capsys, tf_files, name):
    code, out, err = run(capsys, "info", "--network", tf_files[name])
    assert code == 0, err
    _, format_name, family = FILES[name]
    assert re.search(rf"^format:\s+{re.escape(format_name)}$", out, re.M)
    assert re.search(rf"^family:\s+{re.escape(family)}(\s|$)", out, re.M)
    net = stylegan.load_network(tf_files[name])
    for key in ("G", "D", "G_ema"):
        assert re.search(rf"^\s+{key}:\s+{sum(p.numel() for p in net[key].parameters())}\b", out, re.M)
    assert re.search(r"num_ws:\s+6\b", out)
    if name == "v1":
        assert "truncation:  v1 default psi 0.7, cutoff 8 (--trunc 0.7 --trunc-cutoff 8)" in out


@pytest.mark.parametrize("name", list(FILES))
def test_convert_then_generate_the_same_images(capsys, tf_files, tmp_path, name):
    dest = tmp_path / f"{name}.safetensors"
    code, out, err = run(capsys, "convert", "--source", tf_files[name], "--dest", dest)
    assert code == 0, err
    assert f"wrote {dest} ({FILES[name][1]}: G, D, G_ema)" in out
    cls = ["--class", "1"] if name == "v2-cond" else []
    for source, outdir in ((tf_files[name], tmp_path / "a"), (dest, tmp_path / "b")):
        code, _, err = run(capsys, "generate", "--network", source, "--seeds", "0-2", "--trunc", "0.7",
                           "--outdir", outdir, "--quiet", *cls)
        assert code == 0, err
    for seed in range(3):
        a = np.asarray(Image.open(tmp_path / "a" / f"seed{seed:04d}.png"))
        b = np.asarray(Image.open(tmp_path / "b" / f"seed{seed:04d}.png"))
        assert a.shape == (16, 16, 3) and np.array_equal(a, b) and a.std() > 0


def test_generate_png_equals_the_network_output(capsys, tf_files, tmp_path):
    """The v1 image file is the generator's output for the official seed → z rule, mapped to bytes."""
    code, _, err = run(capsys, "generate", "--network", tf_files["v1"], "--seeds", "7", "--trunc", "0.5",
                       "--trunc-cutoff", "4", "--outdir", tmp_path, "--quiet")
    assert code == 0, err
    G = stylegan.load_network(tf_files["v1"])["G_ema"]
    z = torch.from_numpy(np.random.RandomState(7).randn(1, G.z_dim)).float()
    img = G(z, None, truncation_psi=0.5, truncation_cutoff=4, noise_mode="const")
    expected = (img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "seed0007.png")), expected)


def test_style_mix_on_v1(capsys, tf_files, tmp_path):
    code, _, err = run(capsys, "style-mix", "--network", tf_files["v1"], "--rows", "1,2", "--cols", "3",
                       "--styles", "0-1", "--outdir", tmp_path, "--quiet")
    assert code == 0, err
    assert (tmp_path / "grid.png").exists() and (tmp_path / "1-3.png").exists()


def test_generate_on_a_damaged_tf_file_is_one_error_line(capsys, tmp_path):
    G, D, Gs = stylegan1_snapshot(0, lod=float("nan"))
    path = write_tf_pickle(tmp_path / "growing.pkl", (G, D, Gs))
    code, out, err = run(capsys, "generate", "--network", path, "--seeds", "0", "--outdir", tmp_path / "o")
    assert code == 2 and err.startswith("error: ") and "lod is nan" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_generate_keeps_the_v1_cutoff_unless_one_is_given(capsys, tmp_path):
    """`--trunc 0.7` on a v1 network truncates the first 8 ws, as v1 did; `--trunc-cutoff` overrides it."""
    path = write_tf_pickle(tmp_path / "v1-64.pkl", stylegan1_snapshot(0, c_dim=0, resolution=64))
    G = stylegan.load_network(path)["G_ema"]
    assert G.num_ws == 10
    z = torch.from_numpy(np.random.RandomState(3).randn(1, G.z_dim)).float()

    def png(img):
        return (img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()

    for extra, cutoff in [((), 8), (("--trunc-cutoff", "10"), 10)]:
        out = tmp_path / f"out{cutoff}"
        code, _, err = run(capsys, "generate", "--network", path, "--seeds", "3", "--trunc", "0.7",
                           "--outdir", out, "--quiet", *extra)
        assert code == 0, err
        expected = png(G(z, None, truncation_psi=0.7, truncation_cutoff=cutoff, noise_mode="const"))
        assert np.array_equal(np.asarray(Image.open(out / "seed0003.png")), expected)
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "out8" / "seed0003.png")),
                              np.asarray(Image.open(tmp_path / "out10" / "seed0003.png")))
