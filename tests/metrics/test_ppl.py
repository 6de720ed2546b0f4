"""PPL: slerp in Z / lerp in W, the ε step and its 1/ε² scaling, cropping, downsampling, sampling t."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from stylegan.metrics import formulas
from stylegan.metrics.detectors import load_detector
from stylegan.metrics.distributed import Shard
from stylegan.metrics.ppl import PathSampler, crop_face, downsample_to_256, ppl_distances
from stylegan.metrics.sampling import LabelPool, unit_seed
from stylegan.metrics.specs import OFFICIAL

CPU = torch.device("cpu")
RTOL = 1e-2  # float32 images with a 1e-4 step carry ~0.5% rounding noise


def test_crop_keeps_rows_three_to_seven_eighths_and_columns_two_to_six():
    img = torch.arange(16 * 16.0).reshape(1, 1, 16, 16)
    out = crop_face(img)
    assert out.shape == (1, 1, 8, 8)
    assert out[0, 0, 0, 0] == 6 * 16 + 4 and out[0, 0, -1, -1] == 13 * 16 + 11


def test_downsample_is_a_box_average_only_above_256():
    x = torch.rand(1, 3, 512, 512, dtype=torch.float64)
    ref = x.numpy().reshape(1, 3, 256, 2, 256, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(downsample_to_256(x, 512).numpy(), ref, rtol=1e-12)
    crop = crop_face(x)  # the factor comes from the network resolution, not the cropped size
    assert downsample_to_256(crop, 512).shape == (1, 3, 128, 128)
    assert downsample_to_256(x[..., :256, :256], 256) is not None and downsample_to_256(x, 256) is x


def reference_distances(G, vgg, spec, index, seed, labels):
    """The PPL protocol written out directly in float64 where it matters (interpolation, ε scaling)."""
    B = spec.ppl_batch
    gen = torch.Generator().manual_seed(unit_seed(seed, "ppl", index))
    t = torch.rand([B], generator=gen).double() * (spec.sampling == "full")
    z0, z1 = torch.randn([2 * B, G.z_dim], generator=gen).double().chunk(2)
    c = labels.draw(gen, B)
    G = copy.deepcopy(G)
    for name, buf in sorted(G.named_buffers()):
        if name.endswith(".noise_const"):
            buf.copy_(torch.randn(buf.shape, generator=gen))
    points = []
    for step in (0.0, spec.epsilon):
        tt = (t + step)[:, None]
        if spec.space == "w":
            w0, w1 = G.mapping(z0.float(), c).double(), G.mapping(z1.float(), c).double()
            points.append((w0 + (w1 - w0) * tt[:, :, None]).float())
        else:
            # Walk the great circle: from z0's direction, turn by t·Ω towards z1 within their plane.
            u0 = torch.nn.functional.normalize(z0, dim=1)
            cos_omega = (u0 * torch.nn.functional.normalize(z1, dim=1)).sum(1, keepdim=True)
            toward = torch.nn.functional.normalize(z1 - (z1 * u0).sum(1, keepdim=True) * u0, dim=1)
            turn = tt * torch.acos(cos_omega)
            points.append(G.mapping((torch.cos(turn) * u0 + torch.sin(turn) * toward).float(), c))
    feats = []
    for ws in points:
        img = G.synthesis(ws, noise_mode="const", force_fp32=True)
        if spec.crop:  # a square half the side, its corner 3/8 down and 2/8 across (in whole eighths)
            eighth = img.shape[2] // 8
            img = img.narrow(2, 3 * eighth, 4 * eighth).narrow(3, 2 * eighth, 4 * eighth)
        feats.append(vgg((img + 1) * 127.5, resize_images=False, return_lpips=True).double())
    return ((feats[0] - feats[1]) ** 2).sum(1) / spec.epsilon ** 2


@pytest.mark.parametrize("name", ["ppl_zfull", "ppl_wfull", "ppl_zend", "ppl2_wend"])
def test_pair_distances_match_a_direct_computation(G, detector_dir, name):
    vgg = load_detector("vgg16", detector_dir=detector_dir)
    spec = OFFICIAL[name]
    sampler = PathSampler(G, vgg, spec, CPU)
    labels = LabelPool(None, 0)
    for index in (0, 7):
        with torch.no_grad():
            ours = sampler.pair_batch(index, 3, labels)
            ref = reference_distances(G, vgg, spec, index, 3, labels)
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=RTOL)
        assert torch.all(ours > 0)


def test_epsilon_scaling_makes_the_distance_step_independent(G, detector_dir):
    vgg = load_detector("vgg16", detector_dir=detector_dir)
    labels = LabelPool(None, 0)
    spec = OFFICIAL["ppl_wfull"]
    with torch.no_grad():
        d4 = PathSampler(G, vgg, spec, CPU).pair_batch(1, 0, labels)
        d3 = PathSampler(G, vgg, dataclasses.replace(spec, epsilon=1e-3), CPU).pair_batch(1, 0, labels)
    # A squared derivative: about the same for both steps (unscaled they would differ 100×).
    np.testing.assert_allclose(d3.numpy(), d4.numpy(), rtol=0.15)


def test_ppl_distances_count_order_and_the_network_is_not_modified(G, detector_dir):
    vgg = load_detector("vgg16", detector_dir=detector_dir)
    spec = dataclasses.replace(OFFICIAL["ppl_wend"], num_gen=7)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    d = ppl_distances(G, vgg, spec, seed=0, labels=LabelPool(None, 0), device=CPU, shard=Shard())
    assert d.shape == (7,)
    assert all(torch.equal(v, G.state_dict()[k]) for k, v in before.items())
    with torch.no_grad():
        sampler = PathSampler(G, vgg, spec, CPU)
        direct = torch.cat([sampler.pair_batch(u, 0, LabelPool(None, 0)) for u in range(4)])[:7]
    np.testing.assert_array_equal(d, direct.numpy())
    assert formulas.filtered_mean(d) > 0
