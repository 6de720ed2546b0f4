"""`stylegan style-mix`: the grid, one file per cell, and cells equal to a direct synthesis of mixed ws."""

from __future__ import annotations

import numpy as np
import PIL.Image
import torch


def read_png(path) -> np.ndarray:
    with PIL.Image.open(path) as f:
        a = np.asarray(f)
    return a[:, :, None] if a.ndim == 2 else a


def test_style_mix_files_and_cells(run, G, tmp_path):
    rows, cols, psi = [85, 100], [55, 821, 4], 0.7
    r = run("style-mix", "--rows", "85,100", "--cols", "55,821,4", "--styles", "coarse", "--trunc", psi,
            "--class", 5, "--batch", 1, "--outdir", tmp_path, "--quiet")
    assert r.code == 0, r.err
    names = {p.name for p in tmp_path.iterdir()}
    assert {f"{r}-{c}.png" for r in rows for c in cols} <= names and "grid.png" in names

    def ws_of(seed):
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
        c = torch.zeros([1, G.c_dim])
        c[0, 5] = 1
        w = G.mapping(z, c)[0]
        return G.mapping.w_avg + (w - G.mapping.w_avg) * psi

    with torch.no_grad():
        w = ws_of(100).clone()
        w[0:4] = ws_of(821)[0:4]  # coarse = indices 0-3
        img = G.synthesis(w[None], noise_mode="const")
    expected = np.clip(img[0].numpy().transpose(1, 2, 0) * 127.5 + 128, 0, 255).astype(np.uint8)
    assert np.abs(read_png(tmp_path / "100-821.png").astype(int) - expected).max() <= 1

    grid = read_png(tmp_path / "grid.png")
    assert grid.shape == (3 * 32, 4 * 32, 1)
    np.testing.assert_array_equal(grid[2 * 32:, 2 * 32:3 * 32], read_png(tmp_path / "100-821.png"))
    np.testing.assert_array_equal(grid[:32, 32:64], read_png(tmp_path / "55-55.png"))
    assert not grid[:32, :32].any()


def test_styles_beyond_num_ws(run, tmp_path):
    r = run("style-mix", "--rows", "1", "--cols", "2", "--styles", "0-8", "--class", "0", "--outdir", tmp_path / "o")
    assert r.code == 2 and "beyond this network's 8 ws" in r.err and not (tmp_path / "o").exists()
