"""The CelebA-HQ attribute classifiers (TF pickles of one ProGAN ``D_paper`` or StyleGAN ``D_basic`` network):
read safely, their layout verified, and their logits equal to an independent float64 re-derivation of the TF
graph from the official build functions' rules (written here, sharing no code with the package)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan.errors import StyleGANError
from stylegan.formats.tf_classifier import (
    ATTRIBUTES,
    classifier_file_name,
    load_classifier,
)
from tests.formats.tf_writer import (
    attribute_classifier,
    stylegan1_snapshot,
    write_tf_pickle,
)

SQRT2 = math.sqrt(2.0)


# ----------------------------------------------------------------- the TF graph, re-derived in float64

def _t(value) -> torch.Tensor:
    return torch.from_numpy(np.asarray(value, dtype=np.float64))


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return torch.maximum(x, 0.2 * x)  # TF's leaky_relu: max(x · alpha, x)


def _conv_same(x: torch.Tensor, w_tf, gain: float = SQRT2) -> torch.Tensor:
    """TF conv2d, NCHW, SAME, of kernel [k, k, in, out] scaled at run time by gain / sqrt(fan_in)."""
    w = _t(w_tf)
    k, fan_in = w.shape[0], w.shape[0] * w.shape[1] * w.shape[2]
    return F.conv2d(x, w.permute(3, 2, 0, 1) * (gain / math.sqrt(fan_in)), padding=k // 2)


def _bias(x: torch.Tensor, b) -> torch.Tensor:
    b = _t(b)
    return x + (b.view(1, -1, 1, 1) if x.ndim == 4 else b.view(1, -1))


def _blur_121(x: torch.Tensor) -> torch.Tensor:
    """StyleGAN's blur2d with [1, 2, 1]: depthwise, normalised to sum 1, SAME padding."""
    f = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    f = torch.outer(f, f) / 16.0
    c = x.shape[1]
    return F.conv2d(x, f.expand(c, 1, 3, 3), padding=1, groups=c)


def _average_2x2(x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(dim=(3, 5))


def reference_logits(v: dict, images: np.ndarray, *, blur: bool) -> np.ndarray:
    """float64 logits ``[N]`` of the classifier with variables ``v`` at lod 0 for NCHW ``images``.

    conv2d_downscale2d (fused or not) is conv 3×3 SAME followed by the 2×2 average; the bias and the
    activation come after it. D_basic blurs before that conv; D_paper does not.
    """
    x = _t(images)
    x = _lrelu(_bias(_conv_same(x, v["FromRGB_lod0/weight"]), v["FromRGB_lod0/bias"]))
    side = x.shape[-1]
    while side > 4:
        s = f"{side}x{side}"
        x = _lrelu(_bias(_conv_same(x, v[f"{s}/Conv0/weight"]), v[f"{s}/Conv0/bias"]))
        if blur:
            x = _blur_121(x)
        x = _lrelu(_bias(_average_2x2(_conv_same(x, v[f"{s}/Conv1_down/weight"])), v[f"{s}/Conv1_down/bias"]))
        side //= 2
    x = _lrelu(_bias(_conv_same(x, v["4x4/Conv/weight"]), v["4x4/Conv/bias"]))
    x = x.reshape(x.shape[0], -1)  # NCHW flattened, as TF's dense reshapes it
    w0, w1 = _t(v["4x4/Dense0/weight"]), _t(v["4x4/Dense1/weight"])
    x = _lrelu(_bias(x @ w0 * (SQRT2 / math.sqrt(w0.shape[0])), v["4x4/Dense0/bias"]))
    return (_bias(x @ w1 * (1.0 / math.sqrt(w1.shape[0])), v["4x4/Dense1/bias"]))[:, 0].numpy()


def relative_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("build_func, resolution, extra, blur", [
    ("D_paper", 16, {}, False),  # ProGAN: fused downscaling everywhere, no blur
    ("D_basic", 16, {}, True),  # StyleGAN: blur, separate average pooling below 128²
    ("D_basic", 16, {"fused_scale": True}, True),  # StyleGAN: blur and the fused strided conv
    ("D_paper", 32, {"fused_scale": True, "structure": "recursive", "dtype": "float32"}, False),
])
def test_logits_equal_a_float64_reference_of_the_tf_graph(tmp_path, build_func, resolution, extra, blur):
    net = attribute_classifier(3, build_func=build_func, resolution=resolution, extra_kwargs=extra)
    classifier = load_classifier(write_tf_pickle(tmp_path / "c.pkl", net))
    images = np.random.RandomState(1).uniform(-1, 1, size=(5, 3, resolution, resolution)).astype(np.float32)
    with torch.no_grad():
        ours = classifier(torch.from_numpy(images))[:, 0].double().numpy()
    expected = reference_logits(net.variables, images, blur=blur)
    assert np.std(expected) > 1e-3 * np.abs(expected).mean()  # the images matter, not only the biases
    # float32 through ~6 layers of sums over a few hundred terms: ~1e-6 relative; the same math in another
    # order or a missing blur / wrong gain is off by far more than 1e-5.
    assert relative_l2(ours, expected) < 1e-5


def test_the_blur_is_what_tells_the_two_build_functions_apart(tmp_path):
    """The same variables read as D_paper and as D_basic give different logits (the D_basic blur)."""
    images = torch.from_numpy(np.random.RandomState(2).uniform(-1, 1, size=(4, 3, 16, 16)).astype(np.float32))
    outs = []
    for build_func in ("D_paper", "D_basic"):
        net = attribute_classifier(4, build_func=build_func, extra_kwargs={"fused_scale": True})
        with torch.no_grad():
            outs.append(load_classifier(write_tf_pickle(tmp_path / f"{build_func}.pkl", net))(images))
    assert relative_l2(outs[0].numpy(), outs[1].numpy()) > 1e-3


def test_the_forty_official_file_names():
    assert len(ATTRIBUTES) == 40 and len(set(ATTRIBUTES)) == 40
    assert classifier_file_name(0) == "celebahq-classifier-00-male.pkl"
    assert classifier_file_name(5) == "celebahq-classifier-05-5-o-clock-shadow.pkl"
    assert classifier_file_name(24) == "celebahq-classifier-24-mouth-slightly-open.pkl"
    assert classifier_file_name(39) == "celebahq-classifier-39-wearing-necktie.pkl"


def test_unknown_kwargs_are_ignored_as_the_build_functions_ignore_them(tmp_path):
    net = attribute_classifier(5, extra_kwargs={"some_training_option": 3})
    assert load_classifier(write_tf_pickle(tmp_path / "c.pkl", net)).img_resolution == 16


def test_the_embedded_build_source_is_never_run(tmp_path):
    marker = tmp_path / "ran"
    net = attribute_classifier(6)
    net.build_module_src = f"open({str(marker)!r}, 'w').write('x')\n"
    load_classifier(write_tf_pickle(tmp_path / "c.pkl", net))
    assert not marker.exists()


def _with(net, **changes):
    for key, value in changes.items():
        setattr(net, key, value)
    return net


@pytest.mark.parametrize("make, expect", [
    (lambda: attribute_classifier(0, mbstd_group_size=4), "minibatch-stddev layer (mbstd_group_size=4)"),
    (lambda: attribute_classifier(0, build_func="D_basic", outputs=3), "not a one-logit classifier"),
    (lambda: _with(attribute_classifier(0), build_func_name="D_stylegan2"), "build function is 'D_stylegan2'"),
    (lambda: attribute_classifier(0, extra_kwargs={"num_channels": 1}), "takes 1-channel images"),
    (lambda: attribute_classifier(0, extra_kwargs={"fused_scale": False}), "D_paper built with fused_scale=False"),
    (lambda: attribute_classifier(0, build_func="D_basic", extra_kwargs={"label_size": 2}),
     "conditional discriminator (label_size=2)"),
    (lambda: attribute_classifier(0, extra_kwargs={"use_wscale": False}), "use_wscale=False"),
    (lambda: attribute_classifier(0, lod=1.5), "progressive-growing snapshot at lod 1.5"),
    (lambda: attribute_classifier(0, extra_kwargs={"resolution": 32}), "lacks the variable 32x32/Conv0/weight"),
])
def test_another_layout_is_refused_naming_what_was_found(tmp_path, make, expect):
    path = write_tf_pickle(tmp_path / "c.pkl", make())
    with pytest.raises(StyleGANError) as e:
        load_classifier(path)
    assert expect in str(e.value)


def test_a_network_snapshot_is_not_a_classifier(tmp_path):
    path = write_tf_pickle(tmp_path / "snap.pkl", stylegan1_snapshot(0))
    with pytest.raises(StyleGANError, match=r"\(G, D, Gs\) network snapshot"):
        load_classifier(path)


def test_missing_and_extra_variables_are_named(tmp_path):
    net = attribute_classifier(0)
    del net.variables["8x8/Conv0/bias"]
    with pytest.raises(StyleGANError, match="lacks the variable 8x8/Conv0/bias"):
        load_classifier(write_tf_pickle(tmp_path / "a.pkl", net))
    net = attribute_classifier(0)
    net.variables["8x8/Extra/weight"] = np.zeros([3], np.float32)
    with pytest.raises(StyleGANError, match="does not use: 8x8/Extra/weight"):
        load_classifier(write_tf_pickle(tmp_path / "b.pkl", net))
