"""Hostile StyleGAN3 pickles: settings we do not know, settings that ask for huge networks, tensors that do
not fit. Each is one `error:` line from the real command line under a 4 GiB address-space cap."""

from __future__ import annotations

import pytest

from tests.formats.sg3_writer import randomized_sg3, tiny_sg3_kwargs, write_sg3_pickle
from tests.hostile.harness import run_refused


def edited_pickle(path, config="t", **edits):
    """A valid tiny stylegan3 pickle whose stored constructor arguments were then edited."""
    G = randomized_sg3(tiny_sg3_kwargs(config))
    kwargs = dict(G.init_kwargs)
    for name, value in edits.items():
        if name.startswith("mapping_"):
            kwargs["mapping_kwargs"] = {**kwargs["mapping_kwargs"], name[len("mapping_"):]: value}
        else:
            kwargs[name] = value
    G.init_kwargs = kwargs
    return write_sg3_pickle(path, {"G_ema": G})


@pytest.mark.parametrize("edits, expect", [
    ({"use_magic_filters": True}, "'use_magic_filters'"),
    ({"mapping_embed_features": 3}, "mapping_kwargs.embed_features"),
])
def test_unknown_setting_is_named(tmp_path, edits, expect):
    path = edited_pickle(tmp_path / "g.pkl", **edits)
    line = run_refused(["generate", "--network", str(path), "--seeds", "0", "--outdir", str(tmp_path / "out")],
                       cwd=tmp_path, expect=expect)
    assert "StyleGAN3" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("edits, expect", [
    ({"channel_max": 10**9}, "channel_max"),
    ({"channel_base": 2**29, "channel_max": 16384, "img_resolution": 8192}, "MAX_PARAMETERS"),
    ({"margin_size": 10**7}, "margin_size"),
    ({"filter_size": 10**6}, "filter_size"),
    ({"num_critical": 6}, "num_critical"),
    ({"first_cutoff": float("nan")}, "first_cutoff"),
    ({"magnitude_ema_beta": "x"}, "magnitude_ema_beta"),
    ({"conv_kernel": 2**20}, "conv_kernel"),
])
def test_settings_over_the_limits_are_refused_before_allocation(tmp_path, edits, expect):
    path = edited_pickle(tmp_path / "g.pkl", **edits)
    run_refused(["info", "--network", str(path)], cwd=tmp_path, expect=expect)


def test_settings_that_do_not_match_the_tensors(tmp_path):
    path = edited_pickle(tmp_path / "g.pkl", config="r", conv_kernel=3)  # -r tensors, -t kernels
    run_refused(["info", "--network", str(path)], cwd=tmp_path, expect="does not match our StyleGAN3Generator")


def test_translate_on_a_non_stylegan3_network(tmp_path):
    run_refused(["generate", "--seeds", "0", "--rotate", "10", "--outdir", str(tmp_path / "out")], cwd=tmp_path,
                expect="StyleGAN3")


@pytest.mark.parametrize("value", ["1", "a,b", "1,2,3", "nan,0"])
def test_bad_translate(tmp_path, value):
    run_refused(["generate", "--seeds", "0", f"--translate={value}", "--outdir", str(tmp_path / "out")], cwd=tmp_path,
                expect="--translate")
