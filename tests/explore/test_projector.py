"""The projector: schedule and regulariser against their formulas, convergence toward a known w, output files."""

from __future__ import annotations

import contextlib
import copy
import json
import math

import numpy as np
import PIL.Image
import pytest
import torch
import torch.nn.functional as F

from stylegan.errors import StyleGANError
from stylegan.explore.projection_files import snapshot_steps, write_projection
from stylegan.explore.projector import (
    ProjectorConfig,
    learning_rate,
    noise_pyramid,
    noise_regularization,
    project,
    projector_uint8,
    standardize_noise_,
    w_noise_scale,
    w_statistics,
)
from stylegan.explore.ws_files import read_projected_w
from stylegan.metrics.detectors import load_detector
from tests.detector_standins import write_detectors
from tests.explore_nets import read_mp4, tiny_generator


@pytest.fixture(scope="module")
def G():
    return tiny_generator()


@pytest.fixture(scope="module")
def vgg(tmp_path_factory):
    return load_detector("vgg16", detector_dir=write_detectors(tmp_path_factory.mktemp("detectors")))


def known_target(G, seed=5):
    """(w [1, num_ws, w_dim], target uint8 [C, H, W]) for the network's own image of ``seed``."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
    w = G.mapping(z, None)
    return w, torch.from_numpy(projector_uint8(G.synthesis(w, noise_mode="const"))[0]).permute(2, 0, 1)


def test_learning_rate_schedule():
    c = ProjectorConfig(num_steps=1000)
    assert learning_rate(0, c) == 0
    assert learning_rate(25, c) == pytest.approx(0.1 * 0.5)  # halfway up the 5 % linear ramp
    assert learning_rate(500, c) == pytest.approx(0.1)
    assert learning_rate(875, c) == pytest.approx(0.1 * (0.5 - 0.5 * math.cos(0.5 * math.pi)))  # halfway down
    assert learning_rate(999, c) == pytest.approx(0.1 * (0.5 - 0.5 * math.cos(0.004 * math.pi)))


def test_w_noise_ramp():
    c = ProjectorConfig(num_steps=100)
    assert w_noise_scale(0, 2.0, c) == pytest.approx(2.0 * 0.05)
    assert w_noise_scale(30, 2.0, c) == pytest.approx(2.0 * 0.05 * (1 - 0.3 / 0.75) ** 2)
    assert w_noise_scale(75, 2.0, c) == 0 and w_noise_scale(99, 2.0, c) == 0


def test_w_statistics_match_numpy(G):
    w_avg, w_std = w_statistics(G, 300, batch_size=128)
    z = torch.from_numpy(np.random.RandomState(123).randn(300, G.z_dim)).float()
    w = G.mapping(z, None)[:, 0].double().numpy()
    mean = w.mean(0)
    np.testing.assert_allclose(w_avg.numpy(), mean, rtol=1e-5, atol=1e-6)
    assert w_std == pytest.approx(math.sqrt(((w - mean) ** 2).sum() / 300), rel=1e-6)


def test_noise_regularization_matches_numpy():
    maps = [torch.randn(16, 16), torch.randn(4, 4)]
    expected = 0.0
    for m in maps:
        x = m.double().numpy()
        while True:
            expected += (x * np.roll(x, 1, axis=1)).mean() ** 2 + (x * np.roll(x, 1, axis=0)).mean() ** 2
            if x.shape[0] <= 8:
                break
            x = x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2).mean(axis=(1, 3))
    assert float(noise_regularization(maps)) == pytest.approx(expected, rel=1e-5)


def test_noise_pyramid_halves_down_to_8x8():
    assert [tuple(level.shape) for level in noise_pyramid(torch.randn(32, 32))] == [(32, 32), (16, 16), (8, 8)]
    assert [tuple(level.shape) for level in noise_pyramid(torch.randn(4, 4))] == [(4, 4)]
    m = torch.randn(16, 16)
    coarse = list(noise_pyramid(m))[1].double().numpy()
    blocks = m.double().numpy().reshape(8, 2, 8, 2).mean(axis=(1, 3))  # each 2×2 block's mean
    np.testing.assert_allclose(coarse, blocks, rtol=0, atol=1e-6)


def test_noise_maps_are_standardized_in_place():
    maps = [torch.randn(8, 8) * 3 + 2, torch.rand(4, 4)]
    before = [m.double().numpy().copy() for m in maps]
    standardize_noise_(maps)
    for m, x in zip(maps, before):
        centred = x - x.mean()
        np.testing.assert_allclose(m.numpy(), centred / np.sqrt((centred ** 2).mean()), rtol=1e-5, atol=1e-6)
        assert abs(float(m.double().mean())) < 1e-6 and float(m.double().square().mean()) == pytest.approx(1, abs=1e-5)


def test_projection_lowers_the_loss_and_finds_the_w(vgg):
    G = tiny_generator(noise_strength=0)  # the target's noise cannot be recovered; without noise, w can
    w_true, target = known_target(G)
    noise_before = [b.clone() for n, b in G.synthesis.named_buffers() if "noise_const" in n]
    result = project(G, target, vgg, config=ProjectorConfig(num_steps=100), progress=False)
    assert result.ws.shape == (100, G.num_ws, G.w_dim) and len(result.dist) == len(result.loss) == 100
    assert np.mean(result.dist[-5:]) < 0.2 * np.mean(result.dist[:5])
    assert result.loss[-1] < 0.01 * result.loss[0]  # the regulariser is large for the fresh random noise maps
    err_final = float((result.final_ws - w_true).norm())
    err_start = float((result.w_avg[None] - w_true).norm())
    assert err_final < 0.3 * err_start
    # The caller's network is untouched: its noise maps are as before.
    for before, (n, after) in zip(noise_before, [(n, b) for n, b in G.synthesis.named_buffers() if "noise_const" in n]):
        assert torch.equal(before, after) and not after.requires_grad


def test_projection_is_reproducible_and_w_plus_has_one_w_per_layer(G, vgg):
    _, target = known_target(G, seed=8)
    a = project(G, target, vgg, config=ProjectorConfig(num_steps=4), seed=7, progress=False)
    b = project(G, target, vgg, config=ProjectorConfig(num_steps=4), seed=7, progress=False)
    assert torch.equal(a.ws, b.ws)
    assert torch.equal(a.final_ws[0, 0], a.final_ws[0, -1])  # plain W: one w broadcast
    plus = project(G, target, vgg, config=ProjectorConfig(num_steps=6, w_plus=True), seed=7, progress=False)
    assert plus.ws.shape == (6, G.num_ws, G.w_dim) and not torch.equal(plus.final_ws[0, 0], plus.final_ws[0, -1])


def test_grayscale_networks_project(vgg):
    G1 = tiny_generator(channels=1)
    _, target = known_target(G1)
    result = project(G1, target, vgg, config=ProjectorConfig(num_steps=3), progress=False)
    assert result.final_ws.shape == (1, G1.num_ws, G1.w_dim)


def test_target_shape_is_checked(G, vgg):
    with pytest.raises(StyleGANError, match="target has shape"):
        project(G, torch.zeros(3, 32, 32, dtype=torch.uint8), vgg, progress=False)


def test_snapshot_steps():
    assert snapshot_steps(100, 0) == []
    assert snapshot_steps(100, 1) == [99]
    assert snapshot_steps(100, 3) == [0, 50, 99]  # round(49.5) = 50
    assert snapshot_steps(4, 10) == [0, 1, 2, 3]


def test_output_files(G, vgg, tmp_path):
    _, target = known_target(G)
    result = project(G, target, vgg, config=ProjectorConfig(num_steps=5), progress=False)
    target_hwc = target.permute(1, 2, 0).numpy()
    write_projection(G, target_hwc, result, tmp_path, num_snapshots=2, fps=10)
    assert {p.name for p in tmp_path.iterdir()} == {"target.png", "proj.png", "projected_w.npz", "proj.mp4", "steps",
                                                    "projection.json"}
    info = json.loads((tmp_path / "projection.json").read_text())
    assert info["dist"] == result.dist and len(info["loss"]) == 5
    assert sorted(p.name for p in (tmp_path / "steps").iterdir()) == ["step0001.png", "step0005.png"]
    ws = read_projected_w(tmp_path / "projected_w.npz")
    assert ws.shape == (1, G.num_ws, G.w_dim) and ws.dtype == np.float32
    np.testing.assert_array_equal(ws, result.final_ws.numpy())
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(tmp_path / "target.png")), target_hwc)
    with torch.no_grad():
        expected = projector_uint8(G.synthesis(torch.from_numpy(ws), noise_mode="const"))[0]
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(tmp_path / "proj.png")), expected)
    meta, frames = read_mp4(tmp_path / "proj.mp4")
    assert len(frames) == 5 and meta["size"] == (32, 16) and meta["fps"] == 10  # target beside projection


def test_config_errors_name_the_python_fields(G, vgg):
    with pytest.raises(StyleGANError, match=r"^num_steps \(--num-steps\) is 0, but must be at least 1 "
                                            r"\(use at least 1 step\)$"):
        project(G, known_target(G)[1], vgg, config=ProjectorConfig(num_steps=0), progress=False)
    with pytest.raises(StyleGANError, match=r"^w_avg_samples is 0, but must be at least 1"):
        ProjectorConfig(w_avg_samples=0).check()


def test_unusable_ffmpeg_points_to_save_video(G, vgg, tmp_path, monkeypatch):
    """proj.mp4 has a fixed name, so the way out is no video (save_video=False), not a GIF."""
    _, target = known_target(G)
    result = project(G, target, vgg, config=ProjectorConfig(num_steps=2), progress=False)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-ffmpeg"))
    with pytest.raises(StyleGANError, match="ffmpeg") as info:
        write_projection(G, target.permute(1, 2, 0).numpy(), result, tmp_path / "out")
    assert info.value.fix == ("turn off save_video (--no-save-video), or point $IMAGEIO_FFMPEG_EXE at a working "
                              "ffmpeg")
    assert not (tmp_path / "out" / "proj.mp4").exists()
    write_projection(G, target.permute(1, 2, 0).numpy(), result, tmp_path / "out", save_video=False)
    assert (tmp_path / "out" / "projected_w.npz").is_file()


def official_loop_ws(G, target, vgg, *, steps: int, seed: int, w_avg: torch.Tensor, w_std: float) -> torch.Tensor:
    """w after each step ``[steps, w_dim]`` by the published stylegan2-ada-pytorch loop, re-derived here from its
    description: ``repeat``ed ws, ``avg_pool2d`` noise pyramid, ``loss.backward()``, in-place renormalisation.

    The random draws follow our documented seeding (one generator from ``seed``: the noise maps in buffer order,
    then each step's w noise), which the official code takes from the global RNG instead.
    """
    G = copy.deepcopy(G)
    gen = torch.Generator().manual_seed(seed)
    bufs = [b for n, b in G.synthesis.named_buffers() if "noise_const" in n]
    for b in bufs:
        b.copy_(torch.randn(b.shape, generator=gen))
        b.requires_grad_(True)
    with torch.no_grad():  # NVIDIA's vgg16.pt holds constants; the stand-in's weights require grad
        target_features = vgg(target[None].to(torch.float32), resize_images=False, return_lpips=True)  # ≤ 256²
    w = w_avg[None, None].clone().requires_grad_(True)
    opt = torch.optim.Adam([w, *bufs], betas=(0.9, 0.999), lr=0.1)
    out = []
    for step in range(steps):
        t = step / steps
        noise_scale = w_std * 0.05 * max(0.0, 1.0 - t / 0.75) ** 2
        ramp = min(1.0, (1.0 - t) / 0.25)
        ramp = (0.5 - 0.5 * math.cos(ramp * math.pi)) * min(1.0, t / 0.05)
        opt.param_groups[0]["lr"] = 0.1 * ramp
        ws = (w + torch.randn(w.shape, generator=gen) * noise_scale).repeat([1, G.num_ws, 1])
        images = (G.synthesis(ws, noise_mode="const") + 1) * (255 / 2)
        dist = (target_features - vgg(images, resize_images=False, return_lpips=True)).square().sum()
        reg = 0.0
        for v in bufs:
            x = v[None, None]
            while True:
                reg = reg + (x * torch.roll(x, 1, dims=3)).mean() ** 2 + (x * torch.roll(x, 1, dims=2)).mean() ** 2
                if x.shape[2] <= 8:
                    break
                x = F.avg_pool2d(x, kernel_size=2)
        opt.zero_grad(set_to_none=True)
        (dist + reg * 1e5).backward()
        opt.step()
        out.append(w.detach()[0, 0].clone())
        with torch.no_grad():
            for b in bufs:
                b -= b.mean()
                b *= b.square().mean().rsqrt()
    for p in vgg.parameters():  # the official loop's backward also filled the detector's gradients
        p.grad = None
    return torch.stack(out)


@pytest.mark.parametrize("caller_context", ["plain", "inference_precision", "no_grad"])
def test_projection_follows_the_official_loop_and_leaves_the_detector_alone(G, vgg, caller_context):
    """Step by step the same w as the official loop: called plainly, inside ``inference_precision`` (where the
    ops keep weight-only work between steps) and inside ``torch.no_grad()`` (the projector differentiates
    anyway). The detector's own weights require grad here, yet get no gradient."""
    from stylegan.precision import inference_precision

    assert any(p.requires_grad for p in vgg.parameters())  # so the .grad check below can fail
    _, target = known_target(G, seed=3)
    steps, samples = 8, 300
    w_avg, w_std = w_statistics(G, samples)
    with torch.enable_grad():
        expected = official_loop_ws(G, target, vgg, steps=steps, seed=11, w_avg=w_avg, w_std=w_std)
    context = {"plain": contextlib.nullcontext(), "inference_precision": inference_precision("fp32"),
               "no_grad": torch.no_grad()}[caller_context]
    with context:
        result = project(G, target, vgg, config=ProjectorConfig(num_steps=steps, w_avg_samples=samples), seed=11,
                         progress=False)
    assert all(p.grad is None for p in vgg.parameters())
    moved = float((expected[-1] - w_avg).abs().max())
    assert moved > 1e-2  # the optimisation went somewhere, so agreeing is not trivial
    # The two differ only in float32 rounding (the pyramid's 2×2 means summed in another order, the renormalisation
    # written differently): measured ≤ 3e-6 · moved after 8 steps; Adam's normalised steps keep it from growing fast.
    diff = (result.ws[:, 0] - expected).abs().max()
    assert float(diff) <= 1e-4 * moved, (float(diff), moved)


def test_projection_on_the_cpu_keeps_freed_memory_for_its_steps(G, vgg, monkeypatch):
    calls = []
    monkeypatch.setattr("stylegan.explore.projector.tune_cpu_allocator", lambda: calls.append(1))
    _, target = known_target(G, seed=8)
    project(G, target, vgg, config=ProjectorConfig(num_steps=1), progress=False)
    assert calls == [1]
