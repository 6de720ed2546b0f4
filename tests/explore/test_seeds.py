"""Seed lists: the shared `1,2,5-100,999` form, and seed → z exactly like the official tools."""

from __future__ import annotations

import numpy as np
import pytest

from stylegan.errors import StyleGANError
from stylegan.explore.seeds import parse_index_list, parse_seeds, z_from_seed


@pytest.mark.parametrize("text, expected", [
    ("7", [7]),
    ("1,2,5-8,999", [1, 2, 5, 6, 7, 8, 999]),
    ("0-3", [0, 1, 2, 3]),
    ("4-4", [4]),
    (" 3 , 1 ", [3, 1]),  # order and spacing as given
    ("2,2", [2, 2]),
])
def test_index_lists_parse(text, expected):
    assert parse_index_list(text) == expected


@pytest.mark.parametrize("text, named", [
    ("5-2", "5-2"),      # descending
    ("-1", "-1"),        # negative
    ("1,-3", "-3"),
    ("abc", "abc"),      # junk
    ("1,x2", "x2"),
    ("1.5", "1.5"),
    ("1-2-3", "1-2-3"),
    ("", "empty"),
    ("1,,2", "empty"),
])
def test_bad_index_lists_name_the_bad_part_and_the_form(text, named):
    with pytest.raises(StyleGANError) as info:
        parse_index_list(text)
    message = str(info.value)
    assert named in message
    assert "\n" not in message
    assert "e.g." in message or "write it as" in message


def test_descending_range_suggests_the_fix():
    with pytest.raises(StyleGANError, match=r"write it as 2-5"):
        parse_index_list("5-2")


def test_seeds_must_fit_in_32_bits():
    assert parse_seeds(f"{2**32 - 1}") == [2**32 - 1]
    with pytest.raises(StyleGANError, match="too large"):
        parse_seeds(f"{2**32}")
    with pytest.raises(StyleGANError, match="too large"):
        parse_seeds(f"0-{2**40}")  # rejected before the range is expanded


def test_huge_lists_are_refused():
    with pytest.raises(StyleGANError, match="too long"):
        parse_index_list("0-100000000")


# The official tools' z for a seed is RandomState(seed).randn(1, z_dim). These are that generator's first four
# and 64th normals for each seed, written out (seeds 0 and 42 start with the values quoted throughout numpy's
# documentation), so the test does not restate the implementation.
OFFICIAL_Z = {
    0: ([1.764052345967664, 0.4001572083672233, 0.9787379841057392, 2.240893199201458], -1.7262826023316769),
    42: ([0.4967141530112327, -0.13826430117118466, 0.6476885381006925, 1.5230298564080254], -1.1962066240806708),
    2**32 - 1: ([0.6484086742306527, 0.6693235306338161, -1.0805437227474493, 0.2845010447986309],
                -0.07048343348604938),
}


@pytest.mark.parametrize("seed", sorted(OFFICIAL_Z))
def test_z_from_seed_matches_the_official_values(seed):
    z = z_from_seed(seed, 64)
    assert z.shape == (1, 64) and z.dtype == np.float64
    first, last = OFFICIAL_Z[seed]
    assert z[0, :4].tolist() == first and z[0, 63] == last


def test_z_from_seed_rejects_out_of_range_seeds():
    for seed in (-1, 2**32):
        with pytest.raises(StyleGANError):
            z_from_seed(seed, 8)
