"""Looping latent paths: keyframes, seamless loops, and each interpolation against its formula."""

from __future__ import annotations

import numpy as np
import pytest

from stylegan.errors import StyleGANError
from stylegan.explore.interpolate import LoopPath, cell_seeds_from, keyframe_latents, loop_positions


def test_keyframe_zero_is_the_seed_latent():
    keys = keyframe_latents([3, 10], 4, 8)
    assert keys.shape == (2, 4, 8)
    np.testing.assert_array_equal(keys[0, 0], np.random.RandomState(3).randn(1, 8)[0])
    np.testing.assert_array_equal(keys[1], np.random.RandomState(10).randn(4, 8))


def test_positions_loop_without_repeating_the_first_frame():
    p = loop_positions(10, 5)
    assert p[0] == 0 and p[-1] == pytest.approx(4.5) and np.all(np.diff(p) > 0)
    np.testing.assert_array_equal(loop_positions(10, 5, np.array([3, 7])), p[[3, 7]])


@pytest.mark.parametrize("kind", ["linear", "slerp", "cubic"])
def test_paths_pass_through_keyframes_and_close(kind):
    keys = np.random.RandomState(0).randn(4, 3, 6)
    path = LoopPath(keys, kind)
    np.testing.assert_allclose(path(np.arange(4.0)), keys, atol=1e-12)
    np.testing.assert_allclose(path(np.array([4.0])), keys[:1], atol=1e-12)  # position K is keyframe 0 again
    # No jump where the loop closes: just before K is close to keyframe 0.
    eps = 1e-6
    np.testing.assert_allclose(path(np.array([4 - eps]))[0], keys[0], atol=1e-4)


def test_linear_is_the_straight_line():
    keys = np.random.RandomState(1).randn(3, 5)
    got = LoopPath(keys, "linear")(np.array([0.25, 2.5]))
    np.testing.assert_allclose(got[0], 0.75 * keys[0] + 0.25 * keys[1])
    np.testing.assert_allclose(got[1], 0.5 * keys[2] + 0.5 * keys[0])


def test_slerp_follows_the_great_circle():
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 2.0, 0.0])
    got = LoopPath(np.stack([a, b]), "slerp")(np.array([1 / 3]))[0]
    # Angle 90°: at t = 1/3 the direction is 30° from a; weights sin(60°), sin(30°) over sin(90°).
    np.testing.assert_allclose(got, np.sin(np.pi / 3) * a + np.sin(np.pi / 6) * b, atol=1e-12)
    same = LoopPath(np.stack([a, 3 * a]), "slerp")(np.array([0.5]))[0]  # parallel: falls back to lerp
    np.testing.assert_allclose(same, 2 * a)


def test_cubic_is_smooth_where_the_loop_closes():
    keys = np.random.RandomState(2).randn(5, 4)
    path = LoopPath(keys, "cubic")
    h = 1e-4
    slope_end = (path(np.array([5 - h])) - path(np.array([5 - 2 * h]))) / h
    slope_start = (path(np.array([h])) - path(np.array([0.0]))) / h
    np.testing.assert_allclose(slope_end, slope_start, atol=1e-2)


def test_needs_two_keyframes():
    with pytest.raises(StyleGANError, match="at least 2 keyframes") as info:
        keyframe_latents([1], 1, 4)
    assert info.value.fix == "use num_keyframes (--keyframes) 2 or more"
    with pytest.raises(StyleGANError, match="at least 2 keyframes, got 1") as info:
        LoopPath(np.zeros([1, 2]), "linear")
    assert info.value.fix == "give keys with 2 or more keyframes along the first axis"
    with pytest.raises(StyleGANError, match="unknown interpolation"):
        LoopPath(np.zeros([3, 2]), "quadratic")


def test_grid_seeds_from_one_seed_are_reproducible_and_distinct():
    seeds = cell_seeds_from(42, 6)
    assert seeds == cell_seeds_from(42, 6) and len(set(seeds)) == 6
    assert seeds[:3] == cell_seeds_from(42, 3)


def test_cell_seeds_from_one_seed_are_bounded_before_drawing():
    from stylegan.limits import MAX_GRID_CELLS

    assert len(cell_seeds_from(5, MAX_GRID_CELLS)) == MAX_GRID_CELLS
    with pytest.raises(StyleGANError, match=r"10000000000 grid cells are over the limit of 16384 \(MAX_GRID_CELLS\)"):
        cell_seeds_from(5, 10**10)  # would be an 80 GB draw
