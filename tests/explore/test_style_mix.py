"""Style mixing: style groups, --styles parsing, and cells equal to a direct synthesis of mixed ws."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylegan.errors import StyleGANError
from stylegan.explore.style_mix import (
    StyleSpec,
    check_style_indices,
    format_indices,
    mix_ws,
    parse_style_spec,
    parse_styles,
    style_groups,
    style_mix,
    write_style_mix,
)


def test_style_groups_follow_the_paper():
    # 1024² has 18 ws: coarse 4²–8², middle 16²–32², fine 64²–1024².
    assert style_groups(18) == {"coarse": [0, 1, 2, 3], "middle": [4, 5, 6, 7], "fine": list(range(8, 18))}
    assert style_groups(8) == {"coarse": [0, 1, 2, 3], "middle": [4, 5, 6, 7], "fine": []}  # 32²
    assert style_groups(4) == {"coarse": [0, 1, 2, 3], "middle": [], "fine": []}  # 8²


def test_parse_styles():
    assert parse_styles("0-6", 18) == [0, 1, 2, 3, 4, 5, 6]
    assert parse_styles("coarse", 18) == [0, 1, 2, 3]
    assert parse_styles("Fine", 12) == [8, 9, 10, 11]
    assert parse_styles("middle,0,9", 18) == [0, 4, 5, 6, 7, 9]
    assert format_indices(parse_styles("coarse,fine", 18)) == "0-3,8-17"


@pytest.mark.parametrize("text, match", [
    ("0-8", "index 8 is beyond this network's 8 ws"),
    ("fine", "'fine' is empty"),
    ("6-2", "descending"),
    ("huge", "bad list entry 'huge'"),
])
def test_bad_styles(text, match):
    with pytest.raises(StyleGANError, match=match):
        parse_styles(text, 8)


def test_a_misspelt_group_is_told_the_group_names():
    for check in (lambda: parse_styles("medium", 8), lambda: parse_style_spec("coarse,medium")):
        with pytest.raises(StyleGANError, match="bad list entry 'medium'") as info:
            check()
        assert "coarse, middle, fine" in info.value.fix


def test_style_syntax_is_checked_without_a_network():
    spec = parse_style_spec("coarse,0-3")
    assert spec == StyleSpec(groups=("coarse",), indices=(0, 1, 2, 3))
    assert spec.resolve(18) == [0, 1, 2, 3] and parse_style_spec("fine,1").resolve(10) == [1, 8, 9]
    with pytest.raises(StyleGANError):
        parse_style_spec("coarse,x")


def test_one_range_check_for_style_indices():
    check_style_indices([0, 7], 8)
    for bad in ([8], [0, -1]):
        with pytest.raises(StyleGANError, match=f"style index {bad[-1]} is beyond this network's 8 ws") as info:
            check_style_indices(bad, 8)
        assert "0-7" in info.value.fix and "coarse=0-3" in info.value.fix


def test_mix_ws_swaps_only_the_chosen_indices():
    rows, cols = torch.randn(2, 5, 3), torch.randn(3, 5, 3)
    mixed = mix_ws(rows, cols, [1, 3])
    assert mixed.shape == (2, 3, 5, 3)
    for r in range(2):
        for c in range(3):
            expected = rows[r].clone()
            expected[[1, 3]] = cols[c][[1, 3]]
            assert torch.equal(mixed[r, c], expected)


def to_bytes(img: torch.Tensor) -> np.ndarray:
    return np.clip(img[0].numpy().transpose(1, 2, 0) * 127.5 + 128, 0, 255).astype(np.uint8)


def test_cells_equal_a_direct_synthesis_of_the_mixed_ws(G):
    rows, cols, styles, psi = [3, 8], [5, 1, 3], [0, 1, 2, 3], 0.6
    mix = style_mix(G, rows, cols, styles, truncation_psi=psi, class_idx=2, batch_size=1, progress=False)

    def ws_of(seed):
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
        c = torch.zeros([1, G.c_dim])
        c[0, 2] = 1
        w = G.mapping(z, c)[0]
        return G.mapping.w_avg + (w - G.mapping.w_avg) * psi  # truncation as the official tool does it

    with torch.no_grad():
        for r in rows:
            for c in cols:
                w = ws_of(r).clone()
                w[styles] = ws_of(c)[styles]
                expected = to_bytes(G.synthesis(w[None], noise_mode="const"))
                assert np.abs(mix.images[(r, c)].astype(int) - expected).max() <= 1  # psi rounding only
            expected = to_bytes(G.synthesis(ws_of(r)[None], noise_mode="const"))
            assert np.abs(mix.images[(r, r)].astype(int) - expected).max() <= 1
    assert set(mix.images) == {(s, s) for s in rows + cols} | {(r, c) for r in rows for c in cols}


def test_grid_layout_and_files(G, tmp_path):
    rows, cols = [3, 8], [5, 1, 4]
    mix = style_mix(G, rows, cols, [0, 1], class_idx=0, progress=False)
    grid = mix.grid()
    R = G.img_resolution
    assert grid.shape == (3 * R, 4 * R, G.img_channels)
    cell = lambda i, j: grid[i * R:(i + 1) * R, j * R:(j + 1) * R]  # noqa: E731
    assert not cell(0, 0).any()  # blank corner
    for j, c in enumerate(cols, 1):
        np.testing.assert_array_equal(cell(0, j), mix.images[(c, c)])
    for i, r in enumerate(rows, 1):
        np.testing.assert_array_equal(cell(i, 0), mix.images[(r, r)])
        for j, c in enumerate(cols, 1):
            np.testing.assert_array_equal(cell(i, j), mix.images[(r, c)])
    paths = write_style_mix(mix, tmp_path)
    names = {p.name for p in paths}
    assert names == {"grid.png"} | {f"{r}-{c}.png" for r in rows for c in cols} | {f"{s}-{s}.png" for s in rows + cols}
    assert {p.name for p in tmp_path.iterdir()} == names


def test_styles_beyond_num_ws_are_refused(G):
    with pytest.raises(StyleGANError, match="beyond"):
        style_mix(G, [1], [2], [G.num_ws], class_idx=0, progress=False)


def test_style_mix_needs_a_class_for_a_conditional_network(G):
    with pytest.raises(StyleGANError, match=r"\(pick one with class_idx \(--class\), 0 to \d+\)$"):
        style_mix(G, [1], [2], [0], progress=False)


def test_style_mix_needs_rows_and_columns(G):
    for rows, cols in [([], [2]), ([1], [])]:
        with pytest.raises(StyleGANError, match="at least one row seed and one column seed") as info:
            style_mix(G, rows, cols, [0], class_idx=0, progress=False)
        assert info.value.fix == "give row_seeds (--rows) and col_seeds (--cols)"
