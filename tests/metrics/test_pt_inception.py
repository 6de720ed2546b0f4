"""The PyTorch Inception (pytorch-fid's FID Inception-v3): read from a .pth state dict without torch.load, and
its features equal an independent float64 re-derivation of pytorch-fid's forward for the same weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stylegan.metrics.detectors import DETECTORS, load_detector
from tests.detector_standins import pt_inception_state, write_pt_inception

# ------------------------------------------------------------------------------------------------------
# The reference: pytorch-fid's FID Inception written out as functions of the state dict, in float64.
# Facts: every conv is conv(no bias) → BN(eps 1e-3, running stats) → ReLU; x/255 → bilinear 299
# (align_corners False) → 2x−1; avg pools inside mixed blocks exclude padding; Mixed_7c pools with max;
# features = global mean of Mixed_7c, 2048-d.


def _cbr(sd, name, x, stride=1, padding=0):
    y = F.conv2d(x, sd[f"{name}.conv.weight"], stride=stride, padding=padding)
    mean, var = sd[f"{name}.bn.running_mean"], sd[f"{name}.bn.running_var"]
    scale = sd[f"{name}.bn.weight"] / torch.sqrt(var + 1e-3)
    y = (y - mean[None, :, None, None]) * scale[None, :, None, None] + sd[f"{name}.bn.bias"][None, :, None, None]
    return y.clamp(min=0)


def _avg3(x):  # 3x3 stride 1, mean over the pixels inside the image only
    ones = torch.ones_like(x[:, :1])
    total = F.avg_pool2d(x, 3, 1, 1, count_include_pad=True) * 9
    count = F.avg_pool2d(ones, 3, 1, 1, count_include_pad=True) * 9
    return total / count


def _block_a(sd, b, x):
    return torch.cat([_cbr(sd, f"{b}.branch1x1", x),
                      _cbr(sd, f"{b}.branch5x5_2", _cbr(sd, f"{b}.branch5x5_1", x), padding=2),
                      _cbr(sd, f"{b}.branch3x3dbl_3", _cbr(sd, f"{b}.branch3x3dbl_2",
                                                           _cbr(sd, f"{b}.branch3x3dbl_1", x), padding=1), padding=1),
                      _cbr(sd, f"{b}.branch_pool", _avg3(x))], 1)


def _block_b(sd, b, x):
    d = _cbr(sd, f"{b}.branch3x3dbl_2", _cbr(sd, f"{b}.branch3x3dbl_1", x), padding=1)
    return torch.cat([_cbr(sd, f"{b}.branch3x3", x, stride=2), _cbr(sd, f"{b}.branch3x3dbl_3", d, stride=2),
                      F.max_pool2d(x, 3, 2)], 1)


def _block_c(sd, b, x):
    r, c = (0, 3), (3, 0)  # paddings of the 1x7 and 7x1 convolutions
    s = _cbr(sd, f"{b}.branch7x7_3", _cbr(sd, f"{b}.branch7x7_2", _cbr(sd, f"{b}.branch7x7_1", x), padding=r),
             padding=c)
    d = _cbr(sd, f"{b}.branch7x7dbl_1", x)
    for i, pad in zip(range(2, 6), (c, r, c, r)):
        d = _cbr(sd, f"{b}.branch7x7dbl_{i}", d, padding=pad)
    return torch.cat([_cbr(sd, f"{b}.branch1x1", x), s, d, _cbr(sd, f"{b}.branch_pool", _avg3(x))], 1)


def _block_d(sd, b, x):
    s = _cbr(sd, f"{b}.branch3x3_2", _cbr(sd, f"{b}.branch3x3_1", x), stride=2)
    t = _cbr(sd, f"{b}.branch7x7x3_3", _cbr(sd, f"{b}.branch7x7x3_2", _cbr(sd, f"{b}.branch7x7x3_1", x),
                                            padding=(0, 3)), padding=(3, 0))
    return torch.cat([s, _cbr(sd, f"{b}.branch7x7x3_4", t, stride=2), F.max_pool2d(x, 3, 2)], 1)


def _block_e(sd, b, x, pool):
    a = _cbr(sd, f"{b}.branch3x3_1", x)
    d = _cbr(sd, f"{b}.branch3x3dbl_2", _cbr(sd, f"{b}.branch3x3dbl_1", x), padding=1)
    pooled = F.max_pool2d(x, 3, 1, 1) if pool == "max" else _avg3(x)
    return torch.cat([_cbr(sd, f"{b}.branch1x1", x),
                      _cbr(sd, f"{b}.branch3x3_2a", a, padding=(0, 1)), _cbr(sd, f"{b}.branch3x3_2b", a, padding=(1, 0)),
                      _cbr(sd, f"{b}.branch3x3dbl_3a", d, padding=(0, 1)),
                      _cbr(sd, f"{b}.branch3x3dbl_3b", d, padding=(1, 0)),
                      _cbr(sd, f"{b}.branch_pool", pooled)], 1)


def reference_features(state: dict, images_uint8: torch.Tensor) -> torch.Tensor:
    sd = {k: v.double() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    x = F.interpolate(images_uint8.double() / 255, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
    x = _cbr(sd, "Conv2d_1a_3x3", x, stride=2)
    x = _cbr(sd, "Conv2d_2a_3x3", x)
    x = F.max_pool2d(_cbr(sd, "Conv2d_2b_3x3", x, padding=1), 3, 2)
    x = F.max_pool2d(_cbr(sd, "Conv2d_4a_3x3", _cbr(sd, "Conv2d_3b_1x1", x)), 3, 2)
    for b in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
        x = _block_a(sd, b, x)
    x = _block_b(sd, "Mixed_6a", x)
    for b in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
        x = _block_c(sd, b, x)
    x = _block_e(sd, "Mixed_7c", _block_e(sd, "Mixed_7b", _block_d(sd, "Mixed_7a", x), "avg"), "max")
    return x.mean(dim=(2, 3))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    state = pt_inception_state(seed=11)
    folder = tmp_path_factory.mktemp("pt_detectors")
    write_pt_inception(folder, state)
    return state, folder


def test_features_equal_a_float64_rederivation_of_pytorch_fid(weights):
    state, folder = weights
    g = torch.Generator().manual_seed(5)
    # One image smaller than 299 (upsampled) and one larger (downsampled), as datasets come in any size.
    images = [torch.randint(0, 256, (1, 3, 37, 37), generator=g, dtype=torch.uint8),
              torch.randint(0, 256, (1, 3, 320, 320), generator=g, dtype=torch.uint8)]
    detector = load_detector("inception_pt", detector_dir=folder)
    for img in images:
        ours = detector(img, return_features=True)
        ref = reference_features(state, img)
        assert ours.shape == (1, 2048) and ours.dtype == torch.float32
        # float32 rounding (2^-24 per operation) accumulated over ~17 layers whose dot products sum up to
        # 2048·9 terms gives relative errors around 1e-6; 1e-4 leaves room and still catches any wrong
        # pool, padding or epsilon (those move features by 1e-2 or more).
        rel = ((ours.double() - ref).norm() / ref.norm()).item()
        assert rel < 1e-4, rel


def test_the_last_block_pools_with_max_and_the_others_exclude_padding(weights):
    """The two FID-Inception quirks matter: changing either moves the features far beyond rounding."""
    _, folder = weights
    img = torch.randint(0, 256, (1, 3, 64, 64), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    detector = load_detector("inception_pt", detector_dir=folder)
    ours = detector(img, return_features=True).double()
    detector.Mixed_7c.pool = "avg"
    try:
        changed = detector(img, return_features=True).double()
    finally:
        detector.Mixed_7c.pool = "max"
    assert ((changed - ours).norm() / ours.norm()).item() > 1e-3


def test_files_without_batch_norm_step_counters_load_too(tmp_path):
    """Older torch.save files have no num_batches_tracked buffers; they are not weights, so they may be absent."""
    write_pt_inception(tmp_path, pt_inception_state(seed=1, batches_tracked=False))
    detector = load_detector("inception_pt", detector_dir=tmp_path)
    assert detector(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), return_features=True).shape == (1, 2048)


def test_the_detector_is_the_official_pytorch_fid_release():
    spec = DETECTORS["inception_pt"]
    assert spec.file == "pt_inception-2015-12-05-6726825d.pth"
    assert spec.url == ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                        "pt_inception-2015-12-05-6726825d.pth")


def test_probabilities_cover_the_1008_classes(weights):
    _, folder = weights
    detector = load_detector("inception_pt", detector_dir=folder)
    p = detector(torch.zeros(2, 3, 16, 16, dtype=torch.uint8))
    assert p.shape == (2, 1008) and torch.allclose(p.sum(1), torch.ones(2), atol=1e-5)
