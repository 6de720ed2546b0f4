"""`stylegan generate`: files named like the official tool whose pixels equal a direct G call."""

from __future__ import annotations

import re

import numpy as np
import PIL.Image
import pytest
import torch

import stylegan


def read_png(path) -> np.ndarray:
    with PIL.Image.open(path) as f:
        a = np.asarray(f)
    return a[:, :, None] if a.ndim == 2 else a


def official_bytes(img: torch.Tensor) -> np.ndarray:
    """[1, C, H, W] float → [H, W, C] uint8 with the official formula, written out in numpy."""
    return np.clip(img[0].numpy().transpose(1, 2, 0) * 127.5 + 128, 0, 255).astype(np.uint8)


def direct_image(G, seed, class_idx=None, psi=1.0):
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim))
    c = torch.zeros([1, G.c_dim])
    if class_idx is not None:
        c[0, class_idx] = 1
    with torch.no_grad():
        return official_bytes(G(z, c, truncation_psi=psi, noise_mode="const"))


def test_seed_files_equal_a_direct_call(run, G, tmp_path):
    out = tmp_path / "new" / "dir"  # created if missing
    r = run("generate", "--seeds", "42,7", "--class", "3", "--trunc", "0.7", "--batch", "1", "--outdir", out,
            "--quiet")
    assert r.code == 0, r.err
    assert sorted(p.name for p in out.iterdir()) == ["seed0007.png", "seed0042.png"]
    for seed in (42, 7):
        img = read_png(out / f"seed{seed:04d}.png")
        assert img.shape == (32, 32, 1)
        np.testing.assert_array_equal(img, direct_image(G, seed, 3, psi=0.7))
    assert r.err == ""  # --quiet: no progress bar


def test_progress_bar_unless_quiet(run, tmp_path):
    r = run("generate", "--seeds", "1-3", "--class", "0", "--outdir", tmp_path)
    assert r.code == 0 and "3/3" in r.err


def test_large_seeds_get_their_own_width(run, tmp_path):
    r = run("generate", "--seeds", "123456", "--class", "0", "--outdir", tmp_path, "--quiet")
    assert r.code == 0 and (tmp_path / "seed123456.png").exists()


def test_unconditional_network_file_rgb(run, uncond_network, tmp_path):
    r = run("generate", "--network", uncond_network, "--seeds", "0-2", "--outdir", tmp_path, "--quiet")
    assert r.code == 0, r.err
    G = stylegan.load_network(str(uncond_network))["G_ema"]
    for seed in range(3):
        img = read_png(tmp_path / f"seed{seed:04d}.png")
        assert img.shape == (16, 16, 3)
        assert np.abs(img.astype(int) - direct_image(G, seed)).max() <= 1  # batch of 3 vs 1: float noise only


def test_grid_is_near_square_and_holds_each_seed(run, G, tmp_path):
    r = run("generate", "--seeds", "0-4", "--class", "1", "--grid", "--batch", "1", "--outdir", tmp_path, "--quiet")
    assert r.code == 0, r.err
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]
    grid = read_png(tmp_path / "grid.png")
    assert grid.shape == (2 * 32, 3 * 32, 1)  # 5 images → 3 columns × 2 rows
    for i in range(5):
        row, col = divmod(i, 3)
        np.testing.assert_array_equal(grid[row * 32:(row + 1) * 32, col * 32:(col + 1) * 32], direct_image(G, i, 1))
    assert not grid[32:, 64:].any()  # the sixth cell is empty


def test_grid_width_and_height(run, tmp_path):
    assert run("generate", "--seeds", "0-4", "--class", "1", "--grid-w", "5", "--outdir", tmp_path, "--quiet").code == 0
    assert read_png(tmp_path / "grid.png").shape == (32, 5 * 32, 1)
    assert run("generate", "--seeds", "0-4", "--class", "1", "--grid-h", "5", "--outdir", tmp_path, "--quiet").code == 0
    assert read_png(tmp_path / "grid.png").shape == (5 * 32, 32, 1)


def test_projected_w_variants(run, G, tmp_path):
    ws = np.random.RandomState(0).randn(3, G.num_ws, G.w_dim).astype(np.float32) * 0.5
    np.savez(tmp_path / "one.npz", w=ws[:1])         # the projector's layout [1, num_ws, w_dim]
    np.savez(tmp_path / "many.npz", w=ws)            # [N, num_ws, w_dim]
    np.savez(tmp_path / "flat.npz", w=ws[0])         # [num_ws, w_dim]
    for name, count in [("one", 1), ("many", 3), ("flat", 1)]:
        out = tmp_path / name
        r = run("generate", "--projected-w", tmp_path / f"{name}.npz", "--outdir", out, "--quiet")
        assert r.code == 0, r.err
        assert sorted(p.name for p in out.iterdir()) == [f"proj{i:02d}.png" for i in range(count)]
    with torch.no_grad():
        expected = official_bytes(G.synthesis(torch.from_numpy(ws[2:3]), noise_mode="const"))
    assert np.abs(read_png(tmp_path / "many" / "proj02.png").astype(int) - expected).max() <= 1


@pytest.mark.parametrize("array, key, match", [
    ("wide", "w", r"shape \[1, 8, 65\], expected \[N, 8, 64\]"),
    ("ok", "ws", "no array named 'w'"),
])
def test_bad_projected_w(run, tmp_path, array, key, match):
    w = np.zeros([1, 8, 65 if array == "wide" else 64], np.float32)
    np.savez(tmp_path / "p.npz", **{key: w})
    r = run("generate", "--projected-w", tmp_path / "p.npz", "--outdir", tmp_path / "out")
    assert r.code == 2 and r.err.startswith("error:") and len(r.err.strip().splitlines()) == 1
    assert re.search(match, r.err), r.err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, match", [
    (["--seeds", "1"], r"conditional with 10 classes \(pick one with class_idx \(--class\), 0 to 9\)"),
    (["--seeds", "1", "--class", "10"], "class 10 is out of range"),
    (["--seeds", "1", "--class", "-1"], "class -1 is out of range"),
])
def test_class_errors(run, tmp_path, args, match):
    r = run("generate", *args, "--outdir", tmp_path / "out")
    assert r.code == 2 and re.search(match, r.err), r.err
    assert not (tmp_path / "out").exists()  # the directory made for the run is removed again


def test_class_on_an_unconditional_network(run, uncond_network, tmp_path):
    r = run("generate", "--network", uncond_network, "--seeds", "1", "--class", "0", "--outdir", tmp_path / "o")
    assert r.code == 2 and "unconditional" in r.err and not (tmp_path / "o").exists()


def test_cutoff_noise_mode_and_device_reach_the_generator(run, tmp_path):
    from tests.cli.conftest import small_generator

    G = small_generator(4)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)  # so that noise 'none' and 'const' differ
    path = tmp_path / "noisy.safetensors"
    stylegan.save_network({"G_ema": G}, path)
    r = run("generate", "--network", path, "--seeds", "3", "--class", "2", "--trunc", "0.5", "--trunc-cutoff", "2",
            "--noise-mode", "none", "--device", "cpu", "--outdir", tmp_path / "out", "--quiet")
    assert r.code == 0, r.err
    z = torch.from_numpy(np.random.RandomState(3).randn(1, G.z_dim))
    c = torch.eye(G.c_dim)[2:3]
    with torch.no_grad():
        want = official_bytes(G(z, c, truncation_psi=0.5, truncation_cutoff=2, noise_mode="none"))
        const = official_bytes(G(z, c, truncation_psi=0.5, truncation_cutoff=2, noise_mode="const"))
        uncut = official_bytes(G(z, c, truncation_psi=0.5, noise_mode="none"))
    assert not np.array_equal(want, const) and not np.array_equal(want, uncut)  # both options matter here
    np.testing.assert_array_equal(read_png(tmp_path / "out" / "seed0003.png"), want)


def test_noise_mode_defaults_to_const(run, G, tmp_path):
    assert run("generate", "--seeds", "4", "--class", "0", "--outdir", tmp_path, "--quiet").code == 0
    np.testing.assert_array_equal(read_png(tmp_path / "seed0004.png"), direct_image(G, 4, 0))


def test_a_projected_w_that_is_not_npz_says_so(run, tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_text("not numpy at all")
    r = run("generate", "--projected-w", junk, "--outdir", tmp_path / "out")
    assert r.code == 2 and "not an .npz archive" in r.err and "allow_pickle" not in r.err
    assert r.err.count("\n") == 1 and not (tmp_path / "out").exists()
