"""StyleGAN3 (alias-free) generator: the same pixels as an independent float64 re-derivation of the paper's
network, for stylegan3-t and stylegan3-r, loaded from pickles written in the official layout.

The reference below is written from the published description (Karras et al. 2021, appendix F) and the
official file layout only: Fourier features, modulated convolution with demodulation, filtered leaky
ReLU as explicit zero-insertion → padding → FIR convolution → bias/lrelu/gain/clamp → FIR → decimation.
It shares no code with the package (only the tensors it reads from the loaded state dict).

Tolerance: float32 products of a few hundred terms per layer through 8 layers carry about 1e-6 relative
error; the contract is 1e-4 (relative L2).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import stylegan
from stylegan.networks.alias_free import lowpass_filter
from stylegan.networks.stylegan3 import StyleGAN3Generator, set_input_transform
from tests.formats.sg3_writer import randomized_sg3, tiny_sg3_kwargs, write_sg3_pickle

TOLERANCE = 1e-4


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


# --------------------------------------------------------------------------------------------------
# Independent float64 reference


def ref_fc(x, weight, bias, lr=1.0, lrelu=False):
    y = x @ (weight.double() * lr / math.sqrt(weight.shape[1])).t() + bias.double() * lr
    return F.leaky_relu(y, 0.2) * math.sqrt(2) if lrelu else y


def ref_mapping(sd, z, num_layers, psi, cutoff, num_ws):
    x = z.double()
    x = x / (x.square().mean(1, keepdim=True) + 1e-8).sqrt()
    for i in range(num_layers):
        x = ref_fc(x, sd[f"mapping.fc{i}.weight"], sd[f"mapping.fc{i}.bias"], lr=0.01, lrelu=True)
    ws = x[:, None, :].repeat(1, num_ws, 1)
    avg = sd["mapping.w_avg"].double()
    cut = num_ws if cutoff is None else cutoff
    ws[:, :cut] = avg + psi * (ws[:, :cut] - avg)
    return ws


def ref_input(sd, w, size, rate, bandwidth):
    """Fourier features at pixel centres x_i = ((i + ½)/size − ½) · size / rate (image centre at 0)."""
    p = "synthesis.input."
    t = ref_fc(w, sd[p + "affine.weight"], sd[p + "affine.bias"])
    t = t / torch.sqrt(t[:, 0] ** 2 + t[:, 1] ** 2)[:, None]
    out = []
    for n in range(w.shape[0]):
        c, s, tx, ty = t[n].tolist()
        rot = torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=torch.float64)
        shift = torch.tensor([[1, 0, -tx], [0, 1, -ty], [0, 0, 1]], dtype=torch.float64)
        m = rot @ shift @ sd[p + "transform"].double()
        freqs = sd[p + "freqs"].double() @ m[:2, :2]
        phases = sd[p + "phases"].double() + sd[p + "freqs"].double() @ m[:2, 2]
        amp = (1 - (freqs.norm(dim=1) - bandwidth) / (rate / 2 - bandwidth)).clamp(0, 1)
        pos = ((torch.arange(size, dtype=torch.float64) + 0.5) / size - 0.5) * size / rate
        gy, gx = torch.meshgrid(pos, pos, indexing="ij")
        arg = gx[..., None] * freqs[:, 0] + gy[..., None] * freqs[:, 1] + phases  # [H, W, C]
        feats = torch.sin(2 * math.pi * arg) * amp
        weight = sd[p + "weight"].double() / math.sqrt(feats.shape[-1])
        out.append((feats @ weight.t()).permute(2, 0, 1))
    return torch.stack(out)


def ref_upfirdn(x, f, up=1, down=1, pad=(0, 0, 0, 0), gain=1.0):
    """Zero insertion, pad/crop [x0, x1, y0, y1], true 2-D convolution, decimation; float64."""
    n, c, h, w = x.shape
    if up > 1:
        z = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
        z[:, :, ::up, ::up] = x
        x = z
    x0, x1, y0, y1 = pad
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    x = x[:, :, max(-y0, 0):x.shape[2] - max(-y1, 0), max(-x0, 0):x.shape[3] - max(-x1, 0)]
    if f is not None:
        f = f.double()
        k2 = torch.outer(f, f) * gain if f.ndim == 1 else f * gain  # separable taps → their outer product
        k2 = k2.flip([0, 1])  # convolution, not correlation
        x = F.conv2d(x, k2[None, None].repeat(c, 1, 1, 1), groups=c)
    elif gain != 1:
        x = x * gain
    return x[:, :, ::down, ::down]


def ref_layer(layer_sd, x, w, up, down, padding, torgb, clamp):
    weight, styles = layer_sd["weight"].double(), ref_fc(w, layer_sd["affine.weight"], layer_sd["affine.bias"])
    o, i, k, _ = weight.shape
    gain_in = 1 / math.sqrt(float(layer_sd["magnitude_ema"]))
    out = []
    for n in range(x.shape[0]):
        wn = weight * styles[n][None, :, None, None]
        if torgb:
            wn = wn / math.sqrt(i * k * k)
        else:
            wn = wn / wn.square().sum([1, 2, 3], keepdim=True).sqrt()  # demodulation
        out.append(F.conv2d(x[n:n + 1] * gain_in, wn, padding=k - 1))
    y = torch.cat(out) + layer_sd["bias"].double()[None, :, None, None]
    fu, fd = layer_sd.get("up_filter"), layer_sd.get("down_filter")
    y = ref_upfirdn(y, fu, up=up, pad=padding, gain=up * up if fu is not None else 1)
    if not torgb:
        y = F.leaky_relu(y, 0.2) * math.sqrt(2)
    if clamp is not None:
        y = y.clamp(-clamp, clamp)
    return ref_upfirdn(y, fd, down=down)


def ref_plan(kw):
    """Per-layer (name, up, down, padding, is_torgb) and the input's (size, rate, bandwidth), from the paper's
    appendix F with the official defaults: cutoffs and stopbands geometric from layer 0 to the last
    non-critical layer, rates the next power of two above 2·stopband, sizes rate + 2·margin (the last two:
    the image), a 2× oversampled non-linearity with 6 filter taps per octave of the lower rate."""
    res, layers, critical, margin = kw["img_resolution"], kw.get("num_layers", 14), 2, 10
    fc0, ft0, fcN = 2.0, 2 ** 2.1, res / 2
    ftN = fcN * 2 ** 0.3
    e = [min(i / (layers - critical), 1.0) for i in range(layers + 1)]
    fc = [fc0 * (fcN / fc0) ** x for x in e]
    ft = [ft0 * (ftN / ft0) ** x for x in e]
    rate = [2 ** math.ceil(math.log2(min(2 * t, res))) for t in ft]
    size = [r + 2 * margin for r in rate]
    size[-2:] = [res, res]
    ch = [round(min(kw["channel_base"] / 2 / f, kw["channel_max"])) for f in fc]
    ch[-1] = 3
    plan = []
    for i in range(layers + 1):
        p, torgb = max(i - 1, 0), i == layers
        k = 1 if torgb else kw.get("conv_kernel", 3)
        high = max(rate[p], rate[i]) * (1 if torgb else 2)
        up, down = high // rate[p], high // rate[i]
        up_taps = 6 * up if up > 1 and not torgb else 1
        down_taps = 6 * down if down > 1 and not torgb else 1
        total = (size[i] - 1) * down + 1 - (size[p] + k - 1) * up + up_taps + down_taps - 2
        lo = (total + up) // 2  # samples at pixel centres (appendix C.3)
        plan.append((f"L{i}_{size[i]}_{ch[i]}", up, down, (lo, total - lo, lo, total - lo), torgb))
    return plan, (size[0], rate[0], fc[0])


def ref_synthesis(G: StyleGAN3Generator, ws, kw):
    sd = {k: v for k, v in G.state_dict().items()}
    plan, (size, rate, bandwidth) = ref_plan(kw)
    x = ref_input(sd, ws[:, 0], size, rate, bandwidth)
    for j, (name, up, down, padding, torgb) in enumerate(plan):
        prefix = f"synthesis.{name}."
        layer_sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        x = ref_layer(layer_sd, x, ws[:, j + 1], up, down, padding, torgb, 256)
    return x * 0.25


# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["t", "r"])
def loaded(request, tmp_path_factory):
    """(config, the network written in the official layout, what load_network gives back)."""
    G = randomized_sg3(tiny_sg3_kwargs(request.param), seed=3)
    path = write_sg3_pickle(tmp_path_factory.mktemp("sg3") / "network.pkl", {"G_ema": G})
    return tiny_sg3_kwargs(request.param), G, stylegan.load_network(path)["G_ema"]


@pytest.mark.parametrize("psi, cutoff", [(1.0, None), (0.6, None), (0.5, 3)])
def test_same_pixels_as_float64_reference(loaded, psi, cutoff):
    kw, _, G = loaded
    z = torch.randn([2, G.z_dim], generator=torch.Generator().manual_seed(11))
    ws = G.mapping(z, None, truncation_psi=psi, truncation_cutoff=cutoff)
    ws_ref = ref_mapping(G.state_dict(), z, 2, psi, cutoff, G.num_ws)
    assert rel_l2(ws, ws_ref) < TOLERANCE
    img_ref = ref_synthesis(G, ws_ref, kw)
    assert rel_l2(G.synthesis(ws, noise_mode="const"), ref_synthesis(G, ws.double(), kw)) < TOLERANCE
    assert rel_l2(G(z, None, truncation_psi=psi, truncation_cutoff=cutoff), img_ref) < TOLERANCE
    assert img_ref.std() > 1e-3  # the comparison is not between two blank images


def test_loaded_network_is_the_written_one(loaded):
    kw, written, G = loaded
    config = "r" if kw.get("use_radial_filters") else "t"
    assert isinstance(G, StyleGAN3Generator) and not G.training
    assert G.num_ws == written.num_ws == 8 and G.img_resolution == 16 and G.mapping.w_avg.shape == (8,)
    assert G.synthesis.input.transform.shape == (3, 3)
    assert G.state_dict().keys() == written.state_dict().keys()
    for name, t in written.state_dict().items():
        assert torch.equal(G.state_dict()[name], t), name
    radial = [layer.down_filter.ndim == 2 for layer in G.synthesis.layers() if layer.down_filter is not None]
    assert any(radial) == (config == "r")  # -r: radial down-sampling filters in the non-critical layers
    kernels = {layer.weight.shape[-1] for layer in G.synthesis.layers() if not layer.is_torgb}
    assert kernels == ({1} if config == "r" else {3})


def test_official_state_dict_names():
    G = StyleGAN3Generator(**tiny_sg3_kwargs("t"))
    names = set(G.state_dict())
    assert {"synthesis.input.weight", "synthesis.input.affine.weight", "synthesis.input.transform",
            "synthesis.input.freqs", "synthesis.input.phases", "mapping.fc0.weight", "mapping.fc1.bias",
            "mapping.w_avg"} <= names
    assert "synthesis.L0_36_8.magnitude_ema" in names and "synthesis.L0_36_8.up_filter" in names
    last = G.synthesis.layer_names[-1]
    assert last == "L6_16_3" and f"synthesis.{last}.up_filter" not in names  # ToRGB: identity filters, no buffer


def test_magnitude_ema_tracks_mean_square_of_the_input():
    G = randomized_sg3(tiny_sg3_kwargs("t"), seed=1)
    layer = G.synthesis.layers()[2]
    seen = []
    layer.register_forward_pre_hook(lambda m, args, kwargs: seen.append(args[0].clone()), with_kwargs=True)
    before = float(layer.magnitude_ema)
    ws = G.mapping(torch.randn([3, 8]), None)
    G.synthesis(ws, update_emas=True)
    beta = layer.magnitude_ema_beta
    expected = beta * before + (1 - beta) * float(seen[0].double().square().mean())
    assert float(layer.magnitude_ema) == pytest.approx(expected, rel=1e-6)
    G.synthesis(ws)  # without update_emas nothing moves
    assert float(layer.magnitude_ema) == pytest.approx(expected, rel=1e-6)


def kaiser_beta(attenuation: float) -> float:
    """Kaiser's empirical β for a stopband attenuation in dB (Oppenheim & Schafer 7.62)."""
    if attenuation > 50:
        return 0.1102 * (attenuation - 8.7)
    if attenuation > 21:
        return 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21)
    return 0.0


@pytest.mark.parametrize("numtaps, cutoff, width, fs", [(12, 2.0, 3.4, 16), (12, 8.0, 2.3, 32), (24, 5.5, 6.0, 64)])
def test_separable_filter_is_the_kaiser_windowed_sinc(numtaps, cutoff, width, fs):
    attenuation = 2.285 * (numtaps - 1) * math.pi * (width / (fs / 2)) + 7.95
    n = np.arange(numtaps) - (numtaps - 1) / 2
    taps = 2 * cutoff / fs * np.sinc(2 * cutoff / fs * n) * np.kaiser(numtaps, kaiser_beta(attenuation))
    taps /= taps.sum()  # unit gain at DC
    np.testing.assert_allclose(lowpass_filter(numtaps, cutoff, width, fs).numpy(), taps, rtol=1e-5, atol=1e-7)


def test_radial_filter_is_a_windowed_jinc():
    import scipy.special

    numtaps, cutoff, width, fs = 12, 4.0, 3.0, 32
    f = lowpass_filter(numtaps, cutoff, width, fs, radial=True).double().numpy()
    assert f.shape == (12, 12) and f.sum() == pytest.approx(1, abs=1e-6)
    np.testing.assert_allclose(f, f.T, atol=1e-7)
    centred = np.linspace(-(numtaps - 1) / 2, (numtaps - 1) / 2, numtaps) / fs
    r = np.sqrt(centred[:, None] ** 2 + centred[None, :] ** 2)
    attenuation = 2.285 * (numtaps - 1) * math.pi * (width / (fs / 2)) + 7.95
    window = np.kaiser(numtaps, kaiser_beta(attenuation))
    ref = scipy.special.j1(2 * np.pi * cutoff * r) / (np.pi * r) * np.outer(window, window)
    np.testing.assert_allclose(f, ref / ref.sum(), rtol=1e-5, atol=1e-7)
    assert lowpass_filter(1, cutoff, width, fs) is None


def test_input_transform_stores_the_inverse_of_the_wanted_transform():
    G = StyleGAN3Generator(**tiny_sg3_kwargs("t"))
    set_input_transform(G, (0.3, -0.2), 30)
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    wanted = torch.tensor([[c, s, 0.3], [-s, c, -0.2], [0, 0, 1]], dtype=torch.float64)
    torch.testing.assert_close(G.synthesis.input.transform.double() @ wanted, torch.eye(3, dtype=torch.float64),
                               atol=1e-6, rtol=0)
    set_input_transform(G)
    assert torch.equal(G.synthesis.input.transform, torch.eye(3))


def test_translation_moves_the_features():
    """A translation by one input pixel (1/rate units) shifts the Fourier features by one pixel."""
    G = randomized_sg3(tiny_sg3_kwargs("t"), seed=2)
    inp = G.synthesis.input
    w = torch.randn([1, 8])
    set_input_transform(G)
    base = inp(w)
    set_input_transform(G, (1 / inp.sampling_rate, 0), 0)
    moved = inp(w)
    assert rel_l2(moved[..., :, 1:], base[..., :, :-1]) < 1e-4  # content moved right by one pixel


def test_set_input_transform_refuses_other_networks():
    net = stylegan.load_network("default")
    with pytest.raises(stylegan.StyleGANError, match="StyleGAN3"):
        set_input_transform(net["G_ema"], (0.1, 0), 0)
