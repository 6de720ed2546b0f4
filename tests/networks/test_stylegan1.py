"""StyleGAN (v1): our networks loaded from TF-format pickles against a float64 NumPy re-implementation of
the v1 TF graph (G_style: G_mapping + G_synthesis; D_basic), written here from the paper and the
public TF code's arithmetic, working directly on the TF variables (so the conversion is checked too)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import correlate2d

import stylegan
from stylegan.networks import StyleGAN1Discriminator, StyleGAN1Generator
from tests.formats.tf_writer import stylegan1_discriminator, stylegan1_generator, write_tf_pickle

SQRT2 = math.sqrt(2)
TOL = 1e-5  # relative L2, float32 vs float64


# --------------------------------------------------------------------------------------------------
# float64 reference, NCHW, one sample at a time where convenient


def lrelu(x):
    return np.where(x >= 0, x, 0.2 * x)


def dense(v, scope, x, gain, lrmul=1.0):
    w = v[f"{scope}/weight"]
    return x.reshape(len(x), -1) @ (w * (gain / np.sqrt(w.shape[0]) * lrmul)) + v[f"{scope}/bias"] * lrmul


def runtime_kernel(w, gain):
    """[kh, kw, in, out] times he-std: gain / sqrt(kh · kw · in)."""
    return w * (gain / np.sqrt(np.prod(w.shape[:-1])))


def conv_same(x, w):
    """TF conv2d, stride 1, 'SAME': x [N, I, H, W], w [k, k, I, O] → [N, O, H, W] (cross-correlation)."""
    n, cin, h, wd = x.shape
    out = np.zeros([n, w.shape[3], h, wd])
    for b in range(n):
        for o in range(w.shape[3]):
            for i in range(cin):
                out[b, o] += correlate2d(x[b, i], w[:, :, i, o], mode="same")
    return out


def box_summed_tf(w):
    """TF's fused-scale kernel: pad the [k, k] axes by 1 and add the four one-pixel shifts."""
    k = w.shape[0]
    p = np.zeros((k + 2, k + 2) + w.shape[2:])
    p[1:-1, 1:-1] = w
    return p[1:, 1:] + p[:-1, 1:] + p[1:, :-1] + p[:-1, :-1]


def conv_transpose_same_stride2(x, wf):
    """TF conv2d_transpose, stride 2, 'SAME', output 2H: wf [4, 4, O, I];
    y[o, 2m + a − 1, 2n + b − 1] += wf[a, b, o, i] · x[i, m, n]."""
    n, cin, h, wd = x.shape
    k = wf.shape[0]
    y = np.zeros([n, wf.shape[2], 2 * h + k, 2 * wd + k])
    for a in range(k):
        for b in range(k):
            y[:, :, a:a + 2 * h:2, b:b + 2 * wd:2] += np.einsum("oi,nimw->nomw", wf[a, b], x)
    return y[:, :, 1:1 + 2 * h, 1:1 + 2 * wd]


def conv_stride2_same(x, wf):
    """TF conv2d, stride 2, 'SAME', 4×4 kernel on an even size: pad 1 each side; wf [4, 4, I, O]."""
    n, cin, h, wd = x.shape
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
    out = np.zeros([n, wf.shape[3], h // 2, wd // 2])
    for a in range(4):
        for b in range(4):
            out += np.einsum("io,nimw->nomw", wf[a, b], xp[:, :, a:a + h:2, b:b + wd:2])
    return out


def blur_121(x):
    f = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    return np.stack([np.stack([correlate2d(ch, f, mode="same") for ch in s]) for s in x])


def upscale2d(x):
    """v1's upscale2d: every pixel repeated 2×2 (nearest)."""
    return x.repeat(2, axis=2).repeat(2, axis=3)


def downscale2d(x):
    """v1's downscale2d: the mean of each 2×2 box."""
    return (x[:, :, 0::2, 0::2] + x[:, :, 1::2, 0::2] + x[:, :, 0::2, 1::2] + x[:, :, 1::2, 1::2]) / 4


def lerp_clip(a, b, t):
    """tflib.lerp_clip: a + (b − a) · clip(t, 0, 1)."""
    return a + (b - a) * min(max(t, 0.0), 1.0)


def ref_mapping(v, z, c, num_layers, lrmul=0.01):
    x = z if c is None else np.concatenate([z, c @ v["mapping/LabelConcat/weight"]], axis=1)
    x = x / np.sqrt(np.mean(x**2, axis=1, keepdims=True) + 1e-8)
    for i in range(num_layers):
        x = lrelu(dense(v, f"mapping/Dense{i}", x, SQRT2, lrmul))
    return x


def ref_truncate(v, w, num_ws, psi, cutoff):
    ws = np.repeat(w[:, None], num_ws, axis=1)
    coefs = np.where(np.arange(num_ws) < cutoff, psi, 1.0)[None, :, None]
    avg = v["dlatent_avg"]
    return avg + (ws - avg) * coefs


def ref_synthesis(v, ws, log2, fused_from=128, noise=True, lod=0.0):
    """G_synthesis with the 'linear' structure: every block runs; after block r the running image is
    upscaled and blended with ToRGB_lod{log2 − r} by lerp_clip(new, upscaled, lod − (log2 − r))."""
    def torgb(x, k):
        scope = f"synthesis/ToRGB_lod{k}"
        return conv_same(x, runtime_kernel(v[f"{scope}/weight"], 1.0)) + v[f"{scope}/bias"][None, :, None, None]

    def epilogue(x, scope, idx):
        if noise:
            x = x + v[f"synthesis/noise{idx}"] * v[f"{scope}/Noise/weight"][None, :, None, None]
        x = lrelu(x + v[f"{scope}/bias"][None, :, None, None])
        x = x - x.mean(axis=(2, 3), keepdims=True)
        x = x / np.sqrt(np.mean(x**2, axis=(2, 3), keepdims=True) + 1e-8)
        s = dense(v, f"{scope}/StyleMod", ws[:, idx], 1.0)
        ch = x.shape[1]
        return x * (s[:, :ch, None, None] + 1) + s[:, ch:, None, None]

    x = np.repeat(v["synthesis/4x4/Const/const"], len(ws), axis=0)
    x = epilogue(x, "synthesis/4x4/Const", 0)
    x = epilogue(conv_same(x, runtime_kernel(v["synthesis/4x4/Conv/weight"], SQRT2)), "synthesis/4x4/Conv", 1)
    images = torgb(x, log2 - 2)
    for r in range(3, log2 + 1):
        scope = f"synthesis/{2**r}x{2**r}"
        w = runtime_kernel(v[f"{scope}/Conv0_up/weight"], SQRT2)
        if 2**r >= fused_from:
            x = conv_transpose_same_stride2(x, box_summed_tf(w.transpose(0, 1, 3, 2)))
        else:
            x = conv_same(x.repeat(2, axis=2).repeat(2, axis=3), w)
        x = epilogue(blur_121(x), f"{scope}/Conv0_up", 2 * r - 4)
        x = epilogue(conv_same(x, runtime_kernel(v[f"{scope}/Conv1/weight"], SQRT2)), f"{scope}/Conv1", 2 * r - 3)
        images = lerp_clip(torgb(x, log2 - r), upscale2d(images), lod - (log2 - r))
    return images


def ref_discriminator(v, img, c, log2, fused_from=128, group_size=4, lod=0.0):
    """D_basic with the 'linear' structure: after block r the features are blended with FromRGB_lod{k+1} of
    the input averaged down once more, by lerp_clip(features, fromrgb, lod − k), k = log2 − r."""
    def fromrgb(img, k):
        scope = f"FromRGB_lod{k}"
        return lrelu(conv_same(img, runtime_kernel(v[f"{scope}/weight"], SQRT2)) + v[f"{scope}/bias"][None, :, None, None])

    x = fromrgb(img, 0)
    for r in range(log2, 2, -1):
        scope = f"{2**r}x{2**r}"
        x = lrelu(conv_same(x, runtime_kernel(v[f"{scope}/Conv0/weight"], SQRT2)) + v[f"{scope}/Conv0/bias"][None, :, None, None])
        x = blur_121(x)
        w = runtime_kernel(v[f"{scope}/Conv1_down/weight"], SQRT2)
        if 2**r >= fused_from:
            x = conv_stride2_same(x, box_summed_tf(w) * 0.25)
        else:
            y = conv_same(x, w)
            x = (y[:, :, 0::2, 0::2] + y[:, :, 1::2, 0::2] + y[:, :, 0::2, 1::2] + y[:, :, 1::2, 1::2]) / 4
        x = lrelu(x + v[f"{scope}/Conv1_down/bias"][None, :, None, None])
        img = downscale2d(img)
        x = lerp_clip(x, fromrgb(img, log2 - r + 1), lod - (log2 - r))
    n = len(x)
    g = min(group_size, n)
    y = x.reshape(g, n // g, *x.shape[1:])
    std = np.sqrt(((y - y.mean(axis=0)) ** 2).mean(axis=0) + 1e-8).mean(axis=(1, 2, 3))  # [n/g]
    x = np.concatenate([x, np.broadcast_to(std[np.arange(n) % (n // g)][:, None, None, None], (n, 1, 4, 4))], axis=1)
    x = lrelu(conv_same(x, runtime_kernel(v["4x4/Conv/weight"], SQRT2)) + v["4x4/Conv/bias"][None, :, None, None])
    x = lrelu(dense(v, "4x4/Dense0", x, SQRT2))
    x = dense(v, "4x4/Dense1", x, 1.0)
    return x if c is None else (x * c).sum(axis=1, keepdims=True)


def rel(ours, theirs):
    return float(np.linalg.norm(ours.detach().double().numpy() - theirs) / np.linalg.norm(theirs))


def variables64(tf_net):
    return {k: np.asarray(v, np.float64) for k, v in tf_net.all_variables().items()}


def load_pair(tmp_path, G_tf, D_tf):
    return stylegan.load_network(write_tf_pickle(tmp_path / "v1.pkl", (G_tf, D_tf, G_tf)))


# --------------------------------------------------------------------------------------------------

CASES = {
    "16-fused": dict(resolution=16, extra_kwargs=dict(fused_scale=True), fused_from=8),
    "32-auto-cond": dict(resolution=32, c_dim=3, fused_from=128),
    "128-auto": dict(resolution=128, fmap_base=256, fmap_max=4, mapping_fmaps=6, fused_from=128),
}


@pytest.mark.parametrize("case", list(CASES))
def test_generator_matches_the_float64_reference(tmp_path, case):
    spec = dict(CASES[case])
    fused_from = spec.pop("fused_from")
    G_tf = stylegan1_generator(3, **spec)
    D_tf = stylegan1_discriminator(4, **{k: v for k, v in spec.items() if k in ("resolution", "c_dim", "fmap_base",
                                                                              "fmap_max", "extra_kwargs")})
    net = load_pair(tmp_path, G_tf, D_tf)
    G = net["G_ema"]
    assert type(G) is StyleGAN1Generator and net["format"] == "StyleGAN (v1) TensorFlow pickle"
    log2 = int(math.log2(spec["resolution"]))
    assert G.num_ws == 2 * log2 - 2 and G.img_resolution == spec["resolution"]
    v = variables64(G_tf)
    rs = np.random.RandomState(0)
    z = rs.randn(2, G.z_dim)
    c = np.eye(G.c_dim)[[0, 2]] if G.c_dim else None
    tc = torch.from_numpy(c).float() if c is not None else None
    w = ref_mapping(v, z, c, num_layers=2)
    # Mapping without truncation, then v1's default truncation (ψ 0.7 on the first 8 ws) and explicit ones.
    ws = G.mapping(torch.from_numpy(z).float(), tc)
    assert rel(ws, np.repeat(w[:, None], G.num_ws, 1)) < TOL
    torch.testing.assert_close(G.mapping.w_avg, torch.from_numpy(v["dlatent_avg"]).float(), rtol=0, atol=0)
    img = ref_synthesis(v, ref_truncate(v, w, G.num_ws, 0.7, 8), log2, fused_from)
    assert (G.default_truncation_psi, G.default_truncation_cutoff) == (0.7, 8)
    assert rel(G(torch.from_numpy(z).float(), tc, truncation_psi=G.default_truncation_psi, noise_mode="const"),
               img) < TOL
    img = ref_synthesis(v, ref_truncate(v, w, G.num_ws, 1.0, 0), log2, fused_from)
    assert rel(G(torch.from_numpy(z).float(), tc, noise_mode="const"), img) < TOL  # G(z, c): no truncation
    img = ref_synthesis(v, ref_truncate(v, w, G.num_ws, 0.5, 3), log2, fused_from)
    ours = G(torch.from_numpy(z).float(), tc, truncation_psi=0.5, truncation_cutoff=3, noise_mode="const")
    assert rel(ours, img) < TOL
    img = ref_synthesis(v, ref_truncate(v, w, G.num_ws, 1.0, 0), log2, fused_from, noise=False)
    assert rel(G(torch.from_numpy(z).float(), tc, truncation_psi=1, noise_mode="none"), img) < TOL


@pytest.mark.parametrize("case", list(CASES))
def test_discriminator_matches_the_float64_reference(tmp_path, case):
    spec = dict(CASES[case])
    fused_from = spec.pop("fused_from")
    d_spec = {k: v for k, v in spec.items() if k in ("resolution", "c_dim", "fmap_base", "fmap_max", "extra_kwargs")}
    D_tf = stylegan1_discriminator(4, **d_spec)
    D = load_pair(tmp_path, stylegan1_generator(3, **spec), D_tf)["D"]
    assert type(D) is StyleGAN1Discriminator
    v = variables64(D_tf)
    rs = np.random.RandomState(1)
    for n in (8, 3):  # groups of 4 (strided), and a batch smaller than the group
        img = rs.randn(n, 3, spec["resolution"], spec["resolution"])
        c = np.eye(D.c_dim)[rs.randint(0, D.c_dim, n)] if D.c_dim else None
        expected = ref_discriminator(v, img, c, int(math.log2(spec["resolution"])), fused_from)
        ours = D(torch.from_numpy(img).float(), torch.from_numpy(c).float() if c is not None else None)
        assert ours.shape == (n, 1) and rel(ours, expected) < TOL


def small_v1(c_dim=0, **synthesis):
    torch.manual_seed(0)
    return StyleGAN1Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=16, img_channels=3,
                              mapping_kwargs=dict(num_layers=2, layer_features=8),
                              synthesis_kwargs=dict(fmap_base=32, fmap_max=8, **synthesis)).eval()


def test_api_matches_the_stylegan2_generator():
    G = small_v1()
    with torch.no_grad():
        G.mapping.w_avg.normal_()
    assert (G.z_dim, G.c_dim, G.w_dim, G.num_ws, G.img_resolution, G.img_channels) == (8, 0, 8, 6, 16, 3)
    z = torch.randn(3, 8)
    ws = G.mapping(z, None, truncation_psi=1, truncation_cutoff=None)
    assert ws.shape == (3, G.num_ws, G.w_dim)
    assert G.synthesis(ws, noise_mode="const").shape == (3, 3, 16, 16)
    torch.testing.assert_close(G(z, None, truncation_psi=1, noise_mode="const"),
                               G.synthesis(ws, noise_mode="const"), rtol=0, atol=0)
    # Noise modes: const is repeatable, random is not, none differs from const.
    with torch.no_grad():
        for m in G.modules():
            if hasattr(m, "noise_weight"):
                m.noise_weight.fill_(0.5)
    torch.testing.assert_close(G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="const"),
                               rtol=0, atol=0)
    assert not torch.equal(G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random"))
    assert not torch.allclose(G.synthesis(ws, noise_mode="none"), G.synthesis(ws, noise_mode="const"))
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="bogus")
    # Options only the StyleGAN2 synthesis has are accepted and ignored.
    torch.testing.assert_close(G.synthesis(ws, noise_mode="const", force_fp32=True, fused_modconv=False),
                               G.synthesis(ws, noise_mode="const"), rtol=0, atol=0)
    # The stylegan3 repository's update_emas decides alone whether w_avg moves.
    before = G.mapping.w_avg.clone()
    G(z, None, update_emas=True, noise_mode="const")
    assert not torch.equal(G.mapping.w_avg, before)
    before = G.mapping.w_avg.clone()
    G.train()(z, None, update_emas=False, noise_mode="const")
    assert torch.equal(G.mapping.w_avg, before)


def test_truncation_defaults_and_explicit_arguments():
    """ψ left out: no truncation (as for StyleGAN2); ψ given, cutoff left out: v1's cutoff 8;
    cutoff None: every w; v1's ψ 0.7 is at hand as G.default_truncation_psi."""
    G = StyleGAN1Generator(z_dim=4, c_dim=0, w_dim=4, img_resolution=64, img_channels=3,
                           mapping_kwargs=dict(num_layers=1, layer_features=4),
                           synthesis_kwargs=dict(fmap_base=16, fmap_max=2)).eval()
    with torch.no_grad():
        G.mapping.w_avg.normal_()
    z = torch.randn(2, 4)
    raw = G.mapping(z, None)
    avg = G.mapping.w_avg
    assert G.num_ws == 10
    expected_default = raw.clone()
    expected_default[:, :8] = avg + 0.7 * (raw[:, :8] - avg)
    seen = {}
    G.synthesis.forward = lambda ws, **kw: seen.setdefault("ws", []).append(ws) or ws  # capture the ws
    G(z, None, truncation_psi=G.default_truncation_psi)
    G(z, None, truncation_psi=0.5)  # cutoff left out: v1's 8
    G(z, None, truncation_psi=0.5, truncation_cutoff=None)  # every w
    G(z, None, truncation_psi=1)
    G(z, None, truncation_psi=0.5, truncation_cutoff=0)  # v1: cutoff 0 = off
    G(z)  # no truncation unless asked
    got = seen["ws"]
    torch.testing.assert_close(got[0], expected_default)
    half8 = raw.clone()
    half8[:, :8] = avg + 0.5 * (raw[:, :8] - avg)
    torch.testing.assert_close(got[1], half8)
    torch.testing.assert_close(got[2], avg + 0.5 * (raw - avg))
    torch.testing.assert_close(got[3], raw)
    torch.testing.assert_close(got[4], raw)
    torch.testing.assert_close(got[5], raw)
    # mapping() follows the same rule for the cutoff, and has no truncation unless asked (API default ψ 1).
    torch.testing.assert_close(G.mapping(z, None, truncation_psi=0.5), half8)


def test_file_truncation_settings_become_the_defaults(tmp_path):
    G_tf = stylegan1_generator(1, extra_kwargs=dict(truncation_psi=0.5, truncation_cutoff=4))
    G = load_pair(tmp_path, G_tf, stylegan1_discriminator(2))["G_ema"]
    assert (G.default_truncation_psi, G.default_truncation_cutoff) == (0.5, 4)
    z = torch.randn(2, G.z_dim)
    ws = G.mapping(z, None, truncation_psi=0.5)  # the file's cutoff 4
    torch.testing.assert_close(ws[:, 4:], G.mapping(z, None)[:, 4:], rtol=0, atol=0)
    assert not torch.allclose(ws[:, :4], G.mapping(z, None)[:, :4])
    G_tf = stylegan1_generator(1, extra_kwargs=dict(truncation_psi=None))  # TF None = no truncation
    G = load_pair(tmp_path, G_tf, stylegan1_discriminator(2))["G_ema"]
    assert G.default_truncation_psi == 1


def test_safetensors_round_trip_is_bit_exact(tmp_path):
    G_tf, D_tf = stylegan1_generator(5, c_dim=2), stylegan1_discriminator(6, c_dim=2)
    net = load_pair(tmp_path, G_tf, D_tf)
    stylegan.save_network(net, tmp_path / "v1.safetensors")
    again = stylegan.load_network(tmp_path / "v1.safetensors")
    assert again["format"] == "stylegan safetensors"
    for key in ("G", "D", "G_ema"):
        assert type(again[key]) is type(net[key]) and again[key].init_kwargs == net[key].init_kwargs
        a, b = again[key].state_dict(), net[key].state_dict()
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    z, c = torch.randn(3, 8), torch.eye(2)[[0, 1, 1]]
    torch.testing.assert_close(again["G_ema"](z, c, noise_mode="const"), net["G_ema"](z, c, noise_mode="const"),
                               rtol=0, atol=0)
    img = torch.randn(4, 3, 16, 16)
    torch.testing.assert_close(again["D"](img, torch.eye(2)[[0, 1, 0, 1]]), net["D"](img, torch.eye(2)[[0, 1, 0, 1]]),
                               rtol=0, atol=0)


def test_conditional_needs_labels():
    G = small_v1(c_dim=3)
    with pytest.raises(ValueError, match="conditional"):
        G(torch.randn(1, 8))
    D = StyleGAN1Discriminator(c_dim=3, img_resolution=16, img_channels=3, fmap_base=32, fmap_max=8)
    with pytest.raises(ValueError, match="conditional"):
        D(torch.randn(2, 3, 16, 16))


def test_init_kwargs_record_every_argument_as_plain_data():
    """What save_network stores as each network's constructor arguments: every parameter by name, defaults
    included, sub-network options as dicts, sequences as lists, and no blur as None."""
    G = StyleGAN1Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
                           synthesis_kwargs=dict(fmap_base=16, fmap_max=4, blur_filter=(1, 3, 3, 1)))
    assert G.init_kwargs == dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, mapping_kwargs={},
                                 synthesis_kwargs=dict(fmap_base=16, fmap_max=4, blur_filter=[1, 3, 3, 1]),
                                 truncation_psi=0.7, truncation_cutoff=8, progressive=True)
    assert list(G.init_kwargs) == ["z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs",
                                   "synthesis_kwargs", "truncation_psi", "truncation_cutoff", "progressive"]
    D = StyleGAN1Discriminator(c_dim=2, img_resolution=8, img_channels=3, fmap_base=16, fmap_max=4,
                               blur_filter=(1, 2, 1))
    assert D.init_kwargs == dict(c_dim=2, img_resolution=8, img_channels=3, fmap_base=16, fmap_decay=1.0, fmap_max=4,
                                 activation="lrelu", mbstd_group_size=4, mbstd_num_channels=1, blur_filter=[1, 2, 1],
                                 fused_scale="auto", progressive=True)
    for no_blur in (None, ()):
        D = StyleGAN1Discriminator(c_dim=0, img_resolution=8, img_channels=3, fmap_base=16, fmap_max=4,
                                   blur_filter=no_blur)
        assert D.init_kwargs["blur_filter"] is None and not D.b8.use_blur
