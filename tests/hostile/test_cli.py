"""Hostile command lines: huge grids and walks, empty paths, megabyte-long values.

Each runs the real `stylegan` in a fresh process under a 4 GiB address-space cap (tests/hostile/harness.py)
and must end in exit 2 with one short `error:` line, no traceback, and nothing written.
"""

from __future__ import annotations

import pytest

from stylegan.limits import MAX_ERROR_LINE
from tests.hostile.harness import run_refused

# The built-in network (32x32, z_dim 64, class-conditional) is what a new user runs first.
HUGE_GRIDS = [
    # A 100000x100000 grid of one seed: the canvas alone would be 10 TB.
    (["generate", "--seeds", "0", "--class", "1", "--grid-w", "100000", "--grid-h", "100000", "--outdir", "out"],
     "over the limit of 16384 (MAX_GRID_CELLS)"),
    (["generate", "--seeds", "0", "--class", "1", "--grid", "100000x100000", "--outdir", "out"], "MAX_GRID_CELLS"),
    # Too many seeds for one near-square grid.
    (["generate", "--seeds", "0-99999", "--class", "1", "--grid", "--outdir", "out"], "MAX_GRID_CELLS"),
    # One seed drawing a seed per cell: the draw alone would be 80 GB.
    (["lerp-video", "--seeds", "0", "--class", "1", "--grid-w", "100000", "--grid-h", "100000",
      "--output", "out/v.gif"], "MAX_GRID_CELLS"),
    (["lerp-video", "--seeds", "0", "--class", "1", "--grid", "100000x100000", "--output", "out/v.gif"],
     "MAX_GRID_CELLS"),
    # Within the cell limit, but the walks' keyframes would hold 16384 x 100000 x 64 values (800 GB in float64).
    (["lerp-video", "--seeds", "0", "--class", "1", "--grid", "128x128", "--keyframes", "100000",
      "--output", "out/v.gif"], "MAX_WALK_VALUES"),
    (["style-mix-video", "--row-seed", "0-199", "--col-seeds", "0-199", "--class", "1", "--output", "out/v.gif"],
     "MAX_GRID_CELLS"),
]


@pytest.mark.parametrize("args, expect", HUGE_GRIDS, ids=[" ".join(a[:1] + a[-4:-2]) for a, _ in HUGE_GRIDS])
def test_huge_grids_are_refused_before_rendering(tmp_path, args, expect):
    run_refused(args, cwd=tmp_path, expect=expect)
    assert not (tmp_path / "out").exists()


EMPTY_PATHS = [
    ["generate", "--seeds", "0", "--class", "1", "--outdir", ""],
    ["style-mix", "--rows", "1", "--cols", "2", "--class", "1", "--outdir", ""],
    ["lerp-video", "--seeds", "0", "--class", "1", "--output", ""],
    ["style-mix-video", "--row-seed", "0", "--col-seeds", "1", "--class", "1", "--output", ""],
    ["project", "--seeds", "1", "--class", "1", "--outdir", ""],
    ["dataset", "--source", "sklearn-digits", "--dest", ""],
    ["dataset", "--source", "", "--dest", "digits.zip"],
    ["train", "--data", "digits.zip", "--outdir", ""],
    ["metrics", "--metrics", "fid50k_full", "--out", ""],
    ["generate", "--seeds", "0", "--network", ""],
]


@pytest.mark.parametrize("args", EMPTY_PATHS, ids=[" ".join(a[:1] + a[-2:-1]) for a in EMPTY_PATHS])
def test_empty_paths_are_refused_and_nothing_lands_in_the_working_directory(tmp_path, args):
    line = run_refused(args, cwd=tmp_path, expect="is empty")
    assert line.startswith("error: ") and "--" in line
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["cache"])  # the harness's cache folder at most
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


LONG_VALUES = [
    (["generate", "--seeds", "0-" + "9" * 100_000, "--outdir", "out"], None),
    (["generate", "--seeds", "0", "--class", "c" * 100_000, "--outdir", "out"], "--help"),
    (["generate", "--seeds", "0", "--grid", "9" * 100_000, "--outdir", "out"], "WIDTHxHEIGHT"),
    (["generate", "--seeds", "0", "--network", "n" * 100_000 + ".pkl", "--outdir", "out"], None),
    (["dataset", "--source", "sklearn-digits", "--dest", "out/d.zip", "--resolution", "9" * 100_000], "WIDTHxHEIGHT"),
]


@pytest.mark.parametrize("args, expect", LONG_VALUES, ids=["seeds", "class", "grid", "network", "resolution"])
def test_megabyte_values_give_a_short_error_line(tmp_path, args, expect):
    line = run_refused(args, cwd=tmp_path, expect=expect)
    assert len(line) <= MAX_ERROR_LINE
    assert not (tmp_path / "out").exists()


def test_an_oversized_style_mix_figure_is_refused_before_rendering(tmp_path):
    # 200 × 200 seeds would render 40 000 cells before the grid check; the check now comes first.
    run_refused(["style-mix", "--rows", "0-199", "--cols", "200-399", "--class", "1",
                 "--outdir", str(tmp_path / "out")], cwd=tmp_path, expect="MAX_GRID_CELLS")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("args, expect", [
    (["generate", "--seeds", "0-" + "9" * 5000], "more than 18 digits"),
    (["dataset", "--source", "sklearn-digits", "--dest", "d.zip", "--resolution", "9" * 5000], "not WIDTHxHEIGHT"),
    (["generate", "--network", "n" * 300, "--seeds", "1"], "as a path"),
])
def test_thousands_of_digits_or_an_overlong_name_are_one_line(tmp_path, args, expect):
    run_refused(args, cwd=tmp_path, expect=expect)
