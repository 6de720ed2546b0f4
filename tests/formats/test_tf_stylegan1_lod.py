"""StyleGAN (v1) TF snapshots taken mid-training (lod ≠ 0): loaded, and drawing what NVIDIA's TF graph draws.

The pickles are written here in the official layout (tests/formats/tf_writer.py) with every level's
ToRGB_lod{k} / FromRGB_lod{k} and a stored ``lod``; the expected outputs come from the float64 re-derivation
of G_synthesis and D_basic with the 'linear' structure in tests/networks/test_stylegan1.py (lerp_clip of each
level, nearest upscale2d, 2×2-mean downscale2d), which works on the TF variables directly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import stylegan
from tests.formats.tf_writer import stylegan1_discriminator, stylegan1_generator, write_tf_pickle
from tests.hostile.harness import run_refused
from tests.networks.test_stylegan1 import (ref_discriminator, ref_mapping, ref_synthesis, ref_truncate, rel,
                                           variables64)

# float32 against float64 through a dozen layers stays near 1e-6; the bound is 1e-4.
TOL = 1e-5
LODS = [0.0, 0.3, 1.0, 1.5, 2.7, 3.0]  # 32×32: 3 = the 4×4 level
SPEC = dict(resolution=32, c_dim=2)


def snapshot_at(tmp_path, g_lod, d_lod, gs_lod, name="snap.pkl", **spec):
    """A (G, D, Gs) pickle whose three networks each have their own lod; returns (path, G_tf, D_tf, Gs_tf)."""
    spec = {**SPEC, **spec}
    G_tf = stylegan1_generator(3, lod=g_lod, **spec)
    Gs_tf = stylegan1_generator(4, lod=gs_lod, **spec)
    Gs_tf.name = "Gs"
    D_tf = stylegan1_discriminator(5, lod=d_lod, **spec)
    return write_tf_pickle(tmp_path / name, (G_tf, D_tf, Gs_tf)), G_tf, D_tf, Gs_tf


def generator_reference(G_tf, z, c, lod, noise=True):
    v = variables64(G_tf)
    log2 = int(math.log2(G_tf.static_kwargs["resolution"]))
    num_ws = 2 * log2 - 2
    ws = ref_truncate(v, ref_mapping(v, z, c, num_layers=2), num_ws, 1.0, 0)
    return ref_synthesis(v, ws, log2, noise=noise, lod=lod)


@pytest.mark.parametrize("lod", LODS)
def test_generator_at_each_lod_matches_the_tf_graph(tmp_path, lod):
    path, G_tf, _, Gs_tf = snapshot_at(tmp_path, lod, 0.0, lod)
    net = stylegan.load_network(path)
    rs = np.random.RandomState(0)
    z, c = rs.randn(2, 8), np.eye(2)[[0, 1]]
    for key, tf_net in (("G", G_tf), ("G_ema", Gs_tf)):
        G = net[key]
        assert G.lod == pytest.approx(lod) and G.synthesis.lod.dtype == torch.float32 and G.synthesis.lod.ndim == 0
        ours = G(torch.from_numpy(z).float(), torch.from_numpy(c).float(), noise_mode="const")
        assert ours.shape == (2, 3, 32, 32)
        assert rel(ours, generator_reference(tf_net, z, c, float(np.float32(lod)))) < TOL


@pytest.mark.parametrize("lod", LODS)
def test_discriminator_at_each_lod_matches_the_tf_graph(tmp_path, lod):
    path, _, D_tf, _ = snapshot_at(tmp_path, 0.0, lod, 0.0)
    D = stylegan.load_network(path)["D"]
    assert float(D.lod) == pytest.approx(lod)
    rs = np.random.RandomState(1)
    img, c = rs.randn(4, 3, 32, 32), np.eye(2)[[0, 1, 1, 0]]
    expected = ref_discriminator(variables64(D_tf), img, c, 5, lod=float(np.float32(lod)))
    assert rel(D(torch.from_numpy(img).float(), torch.from_numpy(c).float()), expected) < TOL


def test_g_d_and_gs_keep_their_own_lod_and_the_reference_tells_lods_apart(tmp_path):
    path, G_tf, _, Gs_tf = snapshot_at(tmp_path, 1.5, 2.7, 0.3)
    net = stylegan.load_network(path)
    assert (net["G"].lod, float(net["D"].lod)) == (1.5, pytest.approx(2.7))
    assert net["G_ema"].lod == pytest.approx(0.3)
    z = np.random.RandomState(2).randn(1, 8)
    c = np.eye(2)[[1]]
    ours = net["G"](torch.from_numpy(z).float(), torch.from_numpy(c).float(), noise_mode="none")
    assert rel(ours, generator_reference(G_tf, z, c, 1.5, noise=False)) < TOL
    # The same weights at a neighbouring lod draw something measurably different: the check can fail.
    assert rel(ours, generator_reference(G_tf, z, c, 1.4, noise=False)) > 100 * TOL


def test_g_style_lod_wins_over_the_synthesis_copy(tmp_path):
    """G_style assigns its own lod to the synthesis network before every run; a stale copy is ignored."""
    G_tf = stylegan1_generator(3, lod=1.5, synthesis_lod=0.0, **SPEC)
    path = write_tf_pickle(tmp_path / "g.pkl", (G_tf, stylegan1_discriminator(5, **SPEC), G_tf))
    assert stylegan.load_network(path)["G_ema"].lod == 1.5


def test_lod_survives_our_safetensors_snapshots(tmp_path):
    path, *_ = snapshot_at(tmp_path, 1.5, 2.7, 0.3)
    net = stylegan.load_network(path)
    stylegan.save_network(net, tmp_path / "snap.safetensors")
    again = stylegan.load_network(tmp_path / "snap.safetensors")
    for key in ("G", "G_ema", "D"):
        a, b = again[key].state_dict(), net[key].state_dict()
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert (again["G"].lod, again["G_ema"].lod) == (net["G"].lod, net["G_ema"].lod)
    z, c = torch.randn(2, 8), torch.eye(2)
    torch.testing.assert_close(again["G_ema"](z, c, noise_mode="const"), net["G_ema"](z, c, noise_mode="const"),
                               rtol=0, atol=0)


def test_a_network_built_without_growing_layers_loads_at_lod_0_only(tmp_path):
    """The 'fixed' structure stores ToRGB_lod0 / FromRGB_lod0 alone: a full-resolution network, the same
    pixels as the growing one at lod 0 (the writer draws the same values and leaves the other levels out)."""
    fixed = stylegan1_generator(3, growing_layers=False, **SPEC)
    growing = stylegan1_generator(3, **SPEC)
    D_fixed = stylegan1_discriminator(5, growing_layers=False, **SPEC)
    a = stylegan.load_network(write_tf_pickle(tmp_path / "a.pkl", (fixed, D_fixed, fixed)))
    b = stylegan.load_network(write_tf_pickle(tmp_path / "b.pkl", (growing, stylegan1_discriminator(5, **SPEC), growing)))
    assert not a["G_ema"].synthesis.progressive and not a["D"].progressive and b["G_ema"].synthesis.progressive
    assert "synthesis.lod" not in a["G_ema"].state_dict() and a["G_ema"].lod == 0
    z, c = torch.randn(2, 8), torch.eye(2)
    torch.testing.assert_close(a["G_ema"](z, c, noise_mode="const"), b["G_ema"](z, c, noise_mode="const"),
                               rtol=0, atol=0)
    img = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(a["D"](img, c), b["D"](img, c), rtol=0, atol=0)
    fixed_mid = stylegan1_generator(3, growing_layers=False, lod=1.0, **SPEC)
    with pytest.raises(stylegan.StyleGANError, match="has only lod 0"):
        stylegan.load_network(write_tf_pickle(tmp_path / "c.pkl", (fixed_mid, D_fixed, fixed_mid)))


BAD_LODS = [("nan", float("nan"), "not a finite number"), ("negative", -0.5, "outside 0 to 3"),
            ("too-large", 3.5, "outside 0 to 3"), ("infinite", float("inf"), "not a finite number")]


@pytest.mark.parametrize("which", ["G", "D"])
@pytest.mark.parametrize("name, lod, expect", BAD_LODS, ids=[b[0] for b in BAD_LODS])
def test_a_damaged_lod_is_one_error_line(tmp_path, which, name, lod, expect):
    g_lod, d_lod = (lod, 0.0) if which == "G" else (0.0, lod)
    path, *_ = snapshot_at(tmp_path, g_lod, d_lod, 0.0, name="bad.pkl")
    line = run_refused(["generate", "--network", str(path), "--seeds", "0", "--class", "0", "--outdir", "out"],
                       cwd=tmp_path, expect=expect)
    assert f"{which} in" in line and "lod" in line
    assert not (tmp_path / "out").exists()
