"""Metric names: the official list and constants, quick versions, and bad names."""

from __future__ import annotations

import pytest

from stylegan.errors import StyleGANError
from stylegan.metrics.specs import OFFICIAL, known_metrics, parse_metrics

ALL = ["fid50k_full", "kid50k_full", "pr50k3_full", "ppl2_wend", "is50k", "fid50k", "kid50k", "pr50k3",
       "ppl_zfull", "ppl_wfull", "ppl_zend", "ppl_wend", "fid50k_full_pt", "fid50k_pt", "pr50k3_full_pt", "pr50k3_pt",
       "ls"]
PYTORCH_VARIANTS = {"fid50k_full_pt": "fid50k_full", "fid50k_pt": "fid50k", "pr50k3_full_pt": "pr50k3_full",
                    "pr50k3_pt": "pr50k3"}


def test_every_official_metric_is_known_with_its_protocol():
    assert known_metrics() == ALL
    s = OFFICIAL
    assert all(s[n].num_gen == 50000 for n in ALL if n != "ls")
    assert s["ls"].num_gen == 200000 and s["ls"].result_keys == ("ls_z", "ls_w")
    for variant, nvidia in PYTORCH_VARIANTS.items():  # the same protocol, another detector
        assert (s[variant].kind, s[variant].max_real, s[variant].full) == (s[nvidia].kind, s[nvidia].max_real,
                                                                            s[nvidia].full)
        assert s[variant].detector == {"inception": "inception_pt", "vgg16": "vgg16_tv"}[s[nvidia].detector]
    assert (s["fid50k_full"].max_real, s["kid50k_full"].max_real, s["pr50k3_full"].max_real) == (None, 10**6, 200000)
    assert all(s[n].max_real == 50000 and not s[n].full for n in ["fid50k", "kid50k", "pr50k3"])
    assert (s["kid50k"].num_subsets, s["kid50k"].max_subset_size) == (100, 1000)
    assert (s["pr50k3"].k, s["pr50k3"].row_batch, s["pr50k3"].col_batch) == (3, 10000, 10000)
    assert s["is50k"].num_splits == 10 and s["is50k"].detector == "inception"
    assert [(s[n].space, s[n].sampling, s[n].crop) for n in ["ppl2_wend", "ppl_zfull", "ppl_wfull", "ppl_zend",
                                                              "ppl_wend"]] == [
        ("w", "end", False), ("z", "full", True), ("w", "full", True), ("z", "end", True), ("w", "end", True)]
    assert all(s[n].epsilon == 1e-4 and s[n].ppl_batch == 2 and s[n].detector == "vgg16" for n in ALL if "ppl" in n)


def test_quick_versions_by_suffix_or_num_gen():
    a, b, c = parse_metrics("fid50k_full@1000, kid50k_full@2k,pr50k3", num_gen=500)
    assert (a.num_gen, b.num_gen, c.num_gen) == (1000, 2000, 500)
    assert (a.label, b.label, c.label) == ("fid50k_full@1000", "kid50k_full@2000", "pr50k3@500")
    assert parse_metrics(["is50k"])[0].label == "is50k"
    assert len(parse_metrics("fid50k_full,FID50K_FULL")) == 1


@pytest.mark.parametrize("text,match", [
    ("fid", "known metrics: fid50k_full, kid50k_full"),
    ("", "no metrics"),
    ("fid50k_full@0", "not a positive count"),
    ("fid50k_full@x", "not a positive count"),
    ("is50k@5", "at least 10"),
    ("pr50k3@3", "at least 4"),
])
def test_bad_names(text, match):
    with pytest.raises(StyleGANError, match=match):
        parse_metrics(text)


def test_bad_num_gen_names_the_python_argument_and_the_flag():
    with pytest.raises(StyleGANError) as e:
        parse_metrics("fid50k_full", num_gen=0)
    assert str(e.value) == ("num_gen (--num-gen) is 0, not a positive count "
                            "(set num_gen (--num-gen) to at least 1, or leave it out)")
