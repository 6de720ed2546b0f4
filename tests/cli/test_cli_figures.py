"""`stylegan figures`: files, sizes, options reaching the figures, --list, and one-line refusals."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest

from stylegan.explore.figures import FIGURES
from tests.hostile.harness import run_refused


def read_png(path) -> np.ndarray:
    with PIL.Image.open(path) as f:
        a = np.asarray(f)
    return a[:, :, None] if a.ndim == 2 else a


def test_default_draws_the_five_paper_figures(run, tmp_path):
    r = run("figures", "--class", 3, "--outdir", tmp_path / "figs", "--quiet")
    assert r.code == 0, r.err
    names = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert names == ["figure02-uncurated-ffhq.png", "figure03-style-mixing.png", "figure04-noise-detail.png",
                     "figure05-noise-components.png", "figure08-truncation-trick.png"]
    assert r.out.count("wrote ") == 5
    assert read_png(tmp_path / "figs" / "figure03-style-mixing.png").shape == (7 * 32, 6 * 32, 1)


def test_options_reach_the_figures(run, tmp_path, G):
    r = run("figures", "truncation", "style-mixing", "--class", 3, "--seeds", "1-3", "--psis", "1,0",
            "--rows", "4,5", "--cols", "6", "--mix-styles", "coarse/0-1,7", "--outdir", tmp_path, "--quiet")
    assert r.code == 0, r.err
    strip = read_png(tmp_path / "figure08-truncation-trick.png")
    assert strip.shape == (3 * 32, 2 * 32, 1)
    # ψ 0 on every w: the same average image in each row.
    np.testing.assert_array_equal(strip[:32, 32:], strip[64:, 32:])
    assert read_png(tmp_path / "figure03-style-mixing.png").shape == (3 * 32, 2 * 32, 1)


def test_sg2_preset_and_uncurated_options(run, tmp_path):
    r = run("figures", "sg2-curated", "uncurated-cars", "--class", 0, "--psi", 0.8, "--lods", "0,1,1",
            "--grid-rows", 2, "--crop", "0,8,32,16", "--outdir", tmp_path, "--quiet")
    assert r.code == 0, r.err
    assert read_png(tmp_path / "stylegan2-curated-ffhq.png").shape == (64, 64, 1)
    assert read_png(tmp_path / "figure11-uncurated-cars.png").shape == (2 * 16, 32 + 16 + 16, 1)


def test_list_names_every_figure(run):
    r = run("figures", "--list")
    assert r.code == 0, r.err
    lines = r.out.strip().splitlines()
    assert [line.split()[0] for line in lines[:len(FIGURES)]] == list(FIGURES)
    assert "paper" in lines[-1] and "all" in lines[-1]


REFUSED = [
    (["figures", "noise-detial"], "unknown figure"),
    (["figures", "uncurated", "--crop", "0,0,40,40"], "does not fit"),
    (["figures", "noise-detail", "--detail-crop", "28,28,8,8"], "does not fit"),
    (["figures", "uncurated", "--crop", "0,0,32"], "X,Y,WIDTH,HEIGHT"),
    (["figures", "uncurated", "--lods", "0,7"], "shrinks"),
    (["figures", "truncation", "--seeds", "9-2"], "descending range"),
    (["figures", "truncation", "--seeds", "x"], "--seeds"),
    (["figures", "truncation", "--seeds", "4294967296"], "too large"),
    (["figures", "uncurated", "--psi", "nan"], "not a finite number"),
    (["figures", "sg2-curated", "--psi", "1e999"], "not a finite number"),
    (["figures", "truncation", "--psis", "1,half"], "not a finite number"),
    (["figures", "truncation", "--lods", "0,1"], "not used by the chosen figures"),
    (["figures", "style-mixing", "--mix-styles", "coarse/medium"], "coarse, middle, fine"),
    (["figures", "style-mixing", "--rows", "1,2,3"], "style rows"),
    (["figures", "noise-components", "--fine-from", "48"], "fine_from"),
    (["figures", "noise-detail", "--samples", "3"], "samples"),
]


@pytest.mark.parametrize("args, expect", REFUSED, ids=[" ".join(a[1:]) for a, _ in REFUSED])
def test_bad_input_is_refused_and_nothing_is_written(tmp_path, args, expect):
    line = run_refused([*args, "--class", "1", "--outdir", "out"], cwd=tmp_path, expect=expect)
    assert not (tmp_path / "out").exists(), line


def test_unknown_figure_lists_the_valid_ones(tmp_path):
    line = run_refused(["figures", "fig2", "--outdir", "out"], cwd=tmp_path, expect="unknown figure 'fig2'")
    assert all(name in line for name in FIGURES)
