"""Style mixing with projected ws (.npz) as rows or columns: same pixels as mixing the same ws by seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylegan.errors import StyleGANError
from stylegan.explore.style_mix import ProjectedW, parse_sources, projected_label, style_mix
from stylegan.explore.ws_files import save_ws


def seed_ws(G, seed, psi, class_idx):
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
    c = torch.zeros([1, G.c_dim])
    c[0, class_idx] = 1
    return G.mapping(z, c, truncation_psi=psi)


def test_npz_rows_give_the_same_pixels_as_seeds(G, tmp_path):
    # Exact equality holds because both paths do the same arithmetic in the same batches: style_mix maps each
    # seed in a mapping call of its own (as seed_ws does here), and both figures synthesize the same number of
    # sources in the same order. Batches of different sizes may round differently (oneDNN picks kernels by
    # shape; on AMX CPUs that moved pixels by 1 grey level), so the batching, not a tolerance, is what is pinned.
    rows, cols, styles, psi = [3, 8], [5, 1], [0, 1, 2, 3], 0.6
    by_seed = style_mix(G, rows, cols, styles, truncation_psi=psi, class_idx=2, progress=False)
    for s in rows:  # what the projector would write for these images: the seeds' truncated ws
        (tmp_path / f"row{s}").mkdir()
        save_ws(seed_ws(G, s, psi, 2), tmp_path / f"row{s}" / "projected_w.npz")
    sources = parse_sources(",".join(str(tmp_path / f"row{s}" / "projected_w.npz") for s in rows))
    assert [s.label for s in sources] == ["row3", "row8"]
    by_file = style_mix(G, sources, cols, styles, truncation_psi=psi, class_idx=2, progress=False)
    for r, label in zip(rows, ["row3", "row8"]):
        np.testing.assert_array_equal(by_file.images[(label, label)], by_seed.images[(r, r)])
        for c in cols:
            np.testing.assert_array_equal(by_file.images[(label, c)], by_seed.images[(r, c)])
    assert by_file.grid().shape == by_seed.grid().shape


def test_projected_only_needs_no_class(G):
    a = ProjectedW("a", seed_ws(G, 1, 1, 0))
    b = ProjectedW("b", seed_ws(G, 2, 1, 0)[0])  # [num_ws, w_dim] works too
    mix = style_mix(G, [a], [b], [0, 1], progress=False)
    assert set(mix.images) == {("a", "a"), ("b", "b"), ("a", "b")}


def test_parse_sources_mixes_seeds_and_files(G, tmp_path):
    save_ws(torch.zeros(2, G.num_ws, G.w_dim), tmp_path / "two.npz")
    sources = parse_sources(f"1,4-5,{tmp_path / 'two.npz'},9")
    assert sources[:3] == [1, 4, 5] and sources[-1] == 9
    assert [s.label for s in sources[3:5]] == ["two.0", "two.1"]
    assert projected_label("out/alice/projected_w.npz") == "alice" and projected_label("x/bob.npz") == "bob"


def test_bad_npz_files(G, tmp_path):
    np.savez(tmp_path / "nows.npz", z=np.zeros([1, 4]))
    with pytest.raises(StyleGANError, match="no array named 'w'"):
        parse_sources(str(tmp_path / "nows.npz"))
    with pytest.raises(StyleGANError, match="cannot read projected W"):
        parse_sources(str(tmp_path / "missing.npz"))
    save_ws(torch.zeros(1, G.num_ws + 1, G.w_dim), tmp_path / "wrong.npz")
    wrong = parse_sources(str(tmp_path / "wrong.npz"))
    with pytest.raises(StyleGANError, match=rf"expected \[N, {G.num_ws}, {G.w_dim}\]"):
        style_mix(G, wrong, [1], [0], class_idx=0, progress=False)
    save_ws(torch.zeros(1, G.num_ws, G.w_dim + 3), tmp_path / "wdim.npz")
    with pytest.raises(StyleGANError, match="expected"):
        style_mix(G, [1], parse_sources(str(tmp_path / "wdim.npz")), [0], class_idx=0, progress=False)
