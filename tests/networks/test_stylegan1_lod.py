"""StyleGAN (v1) progressive growing in our networks: the lod buffers, what forward computes at each lod,
files saved before the growing layers existed, and every command on a mid-training (lod 1.5) network.

Pixel agreement with NVIDIA's TF graph at many lods is checked in tests/formats/test_tf_stylegan1_lod.py
(float64 re-derivation of the 'linear' structure); these tests check the properties that follow from it.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import stylegan
from stylegan.cli import main
from stylegan.networks import StyleGAN1Discriminator, StyleGAN1Generator
from tests.detector_standins import write_detectors
from tests.hostile.harness import run_refused


def small_g(progressive=True, c_dim=0, seed=0):
    torch.manual_seed(seed)
    return StyleGAN1Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=32, img_channels=3,
                              mapping_kwargs=dict(num_layers=2, layer_features=8),
                              synthesis_kwargs=dict(fmap_base=32, fmap_max=8),
                              progressive=progressive).eval().requires_grad_(False)


def small_d(progressive=True, c_dim=0, seed=1):
    torch.manual_seed(seed)
    return StyleGAN1Discriminator(c_dim=c_dim, img_resolution=32, img_channels=3, fmap_base=32, fmap_max=8,
                                  progressive=progressive).eval().requires_grad_(False)


def with_random_biases(net):
    """Biases start at 0; give them values so that every layer's output depends on its parameters."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias") or name.endswith("noise_weight"):
                p.normal_(0, 0.5)
    return net


# --------------------------------------------------------------------------------------------------
# The contract the training loop relies on


def test_lod_buffers_are_saved_zero_dim_float32_and_read_on_every_call():
    G, D = with_random_biases(small_g()), with_random_biases(small_d())
    for owner in (G.synthesis, D):
        assert owner.lod.shape == () and owner.lod.dtype == torch.float32 and float(owner.lod) == 0
        assert "lod" in dict(owner.named_buffers()) and "lod" in owner.state_dict()
    assert "synthesis.lod" in G.state_dict() and G.lod == 0.0
    with pytest.raises(AttributeError):
        G.lod = 1.0  # read-only: the buffer is the one place lod lives
    ws = G.mapping(torch.randn(2, 8), None)
    img = torch.randn(2, 3, 32, 32)
    before_g, before_d = G.synthesis(ws, noise_mode="const"), D(img)
    G.synthesis.lod.fill_(2.5)
    D.lod.fill_(2.5)
    assert G.lod == 2.5
    assert not torch.allclose(G.synthesis(ws, noise_mode="const"), before_g)
    assert not torch.allclose(D(img), before_d)
    G.synthesis.lod.fill_(0)
    D.lod.fill_(0)
    torch.testing.assert_close(G.synthesis(ws, noise_mode="const"), before_g, rtol=0, atol=0)
    torch.testing.assert_close(D(img), before_d, rtol=0, atol=0)


def test_constructed_networks_have_every_level_initialised_as_v1_does():
    """ToRGB_lod{k} reads the block at res / 2^k (gain 1), FromRGB_lod{k} feeds it (gain √2, lrelu); stored
    weights are N(0, 1) (equalised lr: the run-time scale comes from the fan-in) and biases 0."""
    torch.manual_seed(0)
    G = StyleGAN1Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=256, img_channels=3,
                           mapping_kwargs=dict(num_layers=1, layer_features=8),
                           synthesis_kwargs=dict(fmap_base=4096, fmap_max=256))
    D = StyleGAN1Discriminator(c_dim=0, img_resolution=256, img_channels=3, fmap_base=4096, fmap_max=256)
    # v1's channels at resolution r: min(fmap_base / 2^(log2 r − 1), fmap_max)
    widths = {res: min(int(4096 / 2.0 ** (math.log2(res) - 1)), 256) for res in (4, 8, 16, 32, 64, 128, 256)}
    sd_g, sd_d = G.state_dict(), D.state_dict()
    for k in range(7):
        res = 256 >> k
        g_w, g_b = ("torgb_weight", "torgb_bias") if k == 0 else (f"torgb_lod{k}_weight", f"torgb_lod{k}_bias")
        assert sd_g[f"synthesis.{g_w}"].shape == (3, widths[res], 1, 1) and not sd_g[f"synthesis.{g_b}"].any()
        d_w, d_b = ("fromrgb_weight", "fromrgb_bias") if k == 0 else (f"fromrgb_lod{k}_weight", f"fromrgb_lod{k}_bias")
        assert sd_d[d_w].shape == (widths[res], 3, 1, 1) and not sd_d[d_b].any()
    assert "synthesis.torgb_lod7_weight" not in sd_g and "fromrgb_lod7_weight" not in sd_d
    big = torch.cat([sd_g["synthesis.torgb_lod2_weight"].flatten(), sd_d["fromrgb_lod1_weight"].flatten()])
    assert abs(float(big.std()) - 1) < 0.1 and abs(float(big.mean())) < 0.1  # 1152 draws of N(0, 1)


def test_integer_lod_is_the_lower_resolution_image_upsampled_and_finer_blocks_do_not_run():
    G = with_random_biases(small_g())
    ws = G.mapping(torch.randn(2, 8), None)
    for level in (1, 2, 3):
        G.synthesis.lod.fill_(level)
        ran = []
        hooks = [b.register_forward_hook(lambda m, i, o, r=res: ran.append(r))
                 for res, b in zip(G.synthesis.block_resolutions, G.synthesis.blocks())]
        # Poison the ws of the blocks that must not run: any use would show as NaN.
        poisoned = ws.clone()
        poisoned[:, 2 * (4 - level):] = float("nan")
        img = G.synthesis(poisoned, noise_mode="const")
        for h in hooks:
            h.remove()
        assert ran == [4 << i for i in range(4 - level)]
        assert torch.isfinite(img).all()
        side = 1 << level  # every 2^L × 2^L square is one pixel of the lower resolution
        small = img[:, :, ::side, ::side]
        torch.testing.assert_close(img, small.repeat_interleave(side, 2).repeat_interleave(side, 3), rtol=0, atol=0)


def test_fractional_lod_fades_between_the_neighbouring_integer_lods():
    """lod = L + f: (1 − f) of level L's image plus f of level L + 1's, so the output moves linearly in f and
    approaches each integer lod continuously (the fade-in direction v1 uses: lod falls as training goes on)."""
    G = with_random_biases(small_g())
    ws = G.mapping(torch.randn(2, 8), None)

    def at(lod):
        G.synthesis.lod.fill_(lod)
        return G.synthesis(ws, noise_mode="const").double()

    for level in (0, 1, 2):
        lo, hi = at(level), at(level + 1)
        assert not torch.allclose(lo, hi)
        for f in (0.25, 0.5, 0.75):
            expected = (1 - f) * lo + f * hi
            torch.testing.assert_close(at(level + f), expected, rtol=0, atol=1e-5 * float(expected.abs().max()))


def test_discriminator_fractional_lod_fades_the_same_way():
    """Mirrored: at lod = L + f what enters level L + 1 is (1 − f) of level L's block output plus f of
    level L + 1's FromRGB (what enters it at lod L and at lod L + 1 respectively)."""
    D = with_random_biases(small_d())
    img = torch.randn(4, 3, 32, 32)
    blocks = list(D.blocks())

    def entering(level, lod):
        """What level ``level`` (its block, or the 4×4 layers at level 3) receives at ``lod``."""
        D.lod.fill_(lod)
        if level == len(blocks):
            return D._features_4x4(img).double()
        seen = []
        hook = blocks[level].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
        D(img)
        hook.remove()
        return seen[0].double()

    for level in (0, 1, 2):
        lo, hi = entering(level + 1, level), entering(level + 1, level + 1)
        assert not torch.allclose(lo, hi)
        for f in (0.25, 0.5):
            expected = (1 - f) * lo + f * hi
            torch.testing.assert_close(entering(level + 1, level + f), expected, rtol=0,
                                       atol=1e-5 * float(expected.abs().max()))
    # At integer lod L the input is only seen averaged over 2^L × 2^L boxes.
    D.lod.fill_(2)
    boxed = torch.nn.functional.avg_pool2d(img, 4).repeat_interleave(4, 2).repeat_interleave(4, 3)
    torch.testing.assert_close(D(img), D(boxed), rtol=1e-5, atol=1e-6)


def test_a_bad_lod_is_refused_by_forward():
    G, D = small_g(), small_d()
    ws = G.mapping(torch.randn(1, 8), None)
    for bad in (-0.1, 3.01, float("nan"), float("inf")):
        G.synthesis.lod.fill_(bad)
        D.lod.fill_(bad)
        with pytest.raises(ValueError, match="lod is"):
            G.synthesis(ws)
        with pytest.raises(ValueError, match="lod is"):
            D(torch.randn(1, 3, 32, 32))
    fixed = small_g(progressive=False)
    assert "synthesis.lod" not in fixed.state_dict() and "synthesis.torgb_lod1_weight" not in fixed.state_dict()
    fixed.synthesis.lod.fill_(1)
    with pytest.raises(ValueError, match="only lod 0"):
        fixed.synthesis(ws)


# --------------------------------------------------------------------------------------------------
# Files


def stored_metadata(path):
    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


def old_style_file(tmp_path, net):
    """``net`` saved as this package saved v1 networks before the growing layers existed: only the
    full-resolution ToRGB/FromRGB, no lod tensor, and init_kwargs without ``progressive``."""
    path = tmp_path / "old.safetensors"
    stylegan.save_network(net, path)
    tensors, metadata = load_file(str(path)), stored_metadata(path)
    header = json.loads(metadata["stylegan"])
    for info in header["networks"].values():
        del info["init_kwargs"]["progressive"]
    assert not any("lod" in name for name in tensors)
    save_file(tensors, str(path), metadata={**metadata, "stylegan": json.dumps(header)})
    return path


def test_files_saved_before_the_growing_layers_load_with_the_same_pixels(tmp_path):
    G, D = with_random_biases(small_g(progressive=False, c_dim=2)), with_random_biases(small_d(False, c_dim=2))
    path = old_style_file(tmp_path, {"G_ema": G, "D": D})
    net = stylegan.load_network(path)
    assert not net["G_ema"].synthesis.progressive and net["G_ema"].lod == 0 and not net["D"].progressive
    z, c = torch.randn(3, 8), torch.eye(2)[[0, 1, 1]]
    torch.testing.assert_close(net["G_ema"](z, c, noise_mode="const"), G(z, c, noise_mode="const"), rtol=0, atol=0)
    img = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(net["D"](img, c[[0, 1, 0, 1]]), D(img, c[[0, 1, 0, 1]]), rtol=0, atol=0)
    # At lod 0 the growing network computes exactly what the fixed one does with the same weights.
    grown = small_g(c_dim=2)
    grown.load_state_dict(G.state_dict(), strict=False)
    torch.testing.assert_close(grown(z, c, noise_mode="const"), G(z, c, noise_mode="const"), rtol=0, atol=0)


def test_a_damaged_lod_in_our_file_is_one_error_line(tmp_path):
    path = tmp_path / "bad.safetensors"
    stylegan.save_network({"G_ema": small_g()}, path)
    tensors, metadata = load_file(str(path)), stored_metadata(path)
    tensors["G_ema.synthesis.lod"] = torch.tensor(float("nan"))
    save_file(tensors, str(path), metadata=metadata)
    run_refused(["generate", "--network", str(path), "--seeds", "0", "--outdir", "out"], cwd=tmp_path,
                expect="lod is nan")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------------
# Every command on a mid-training network


@pytest.fixture(scope="module")
def mid_training(tmp_path_factory):
    """A conditional 32×32 v1 snapshot at lod 1.5 (8×8 fading into 16×16), saved as our safetensors."""
    G, D = with_random_biases(small_g(c_dim=2)), with_random_biases(small_d(c_dim=2))
    for owner in (G.synthesis, D):
        owner.lod.fill_(1.5)
    path = tmp_path_factory.mktemp("mid") / "mid.safetensors"
    stylegan.save_network({"G": G, "G_ema": G, "D": D}, path)
    return path


def cli(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_info_says_mid_training_and_at_which_lod(capsys, mid_training):
    out = cli(capsys, "info", "--network", mid_training)
    assert "mid-training snapshot" in out
    for key in ("G", "G_ema", "D"):
        assert f"  {key + ':':<13}lod 1.5 (mid-training: 8x8 fading into 16x16)" in out.splitlines()


def test_info_of_a_finished_network_has_no_growing_line(capsys, tmp_path):
    path = tmp_path / "done.safetensors"
    stylegan.save_network({"G_ema": small_g()}, path)
    assert "growing" not in cli(capsys, "info", "--network", path)


def test_generate_draws_the_blended_image_at_full_size(capsys, mid_training, tmp_path):
    cli(capsys, "generate", "--network", mid_training, "--seeds", "3", "--class", "1", "--outdir", tmp_path, "--quiet")
    png = np.asarray(Image.open(tmp_path / "seed0003.png"))
    G = stylegan.load_network(mid_training)["G_ema"]
    z = torch.from_numpy(np.random.RandomState(3).randn(1, 8)).float()
    img = G(z, torch.eye(2)[[1]], noise_mode="const")
    expected = (img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    assert png.shape == (32, 32, 3) and np.abs(png.astype(int) - expected).max() <= 1
    # lod 1.5 at 32×32: the finest detail is 16×16, so every 2×2 square is one colour.
    assert (png[0::2, 0::2] == png[1::2, 1::2]).all()


def test_style_mix_videos_and_projection_run(capsys, mid_training, tmp_path):
    cli(capsys, "style-mix", "--network", mid_training, "--rows", "1,2", "--cols", "3", "--styles", "0-3",
        "--class", "0", "--outdir", tmp_path / "mix", "--quiet")
    assert any((tmp_path / "mix").glob("*.png"))
    cli(capsys, "lerp-video", "--network", mid_training, "--seeds", "0-1", "--grid", "2x1", "--class", "1",
        "--duration-sec", "0.2", "--fps", "10", "--output", tmp_path / "walk.mp4", "--quiet")
    assert (tmp_path / "walk.mp4").stat().st_size > 0
    cli(capsys, "style-mix-video", "--network", mid_training, "--row-seed", "0", "--col-seeds", "1-2",
        "--class", "1", "--duration-sec", "0.2", "--fps", "10", "--output", tmp_path / "mix.mp4", "--quiet")
    assert (tmp_path / "mix.mp4").stat().st_size > 0
    detectors = write_detectors(tmp_path / "detectors")
    cli(capsys, "project", "--network", mid_training, "--seeds", "3", "--class", "1", "--num-steps", "3",
        "--no-save-video", "--detector-dir", detectors, "--outdir", tmp_path / "proj", "--quiet")
    assert any((tmp_path / "proj").rglob("projected_w.npz"))
