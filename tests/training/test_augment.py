"""The ADA augmentation pipeline (small CPU images only)."""

import inspect
import json
import math

import numpy as np
import pytest
import torch

from stylegan.training.augment import AUGPIPE_PRESETS, AugmentPipe, filter_bank


def pipe(p=1.0, exact_blit=False, **kwargs):
    a = AugmentPipe(**kwargs)
    a.p.fill_(p)
    a.exact_blit = exact_blit
    return a


def images(n=4, c=3, res=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand([n, c, res, res], generator=g) * 2 - 1


def smooth_images(n=2, c=3, res=32):
    """Low-frequency images, so that resampling errors stay small."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, res), torch.linspace(-1, 1, res), indexing="ij")
    out = torch.stack([torch.sin(1.3 * xs + 0.7 * ys + k) * torch.cos(0.9 * ys - 0.4 * xs + 2 * k)
                       for k in range(n * c)])
    return out.reshape(n, c, res, res)


def seeded(module, x, seed=0, **kwargs):
    torch.manual_seed(seed)
    return module(x, **kwargs)


# --- interface -------------------------------------------------------------------------------------------

# The official AugmentPipe's keyword arguments and defaults, in signature order (a fact pickles rely on).
OFFICIAL_DEFAULTS = dict([
    ("xflip", 0), ("rotate90", 0), ("xint", 0), ("xint_max", 0.125),
    ("scale", 0), ("rotate", 0), ("aniso", 0), ("xfrac", 0),
    ("scale_std", 0.2), ("rotate_max", 1), ("aniso_std", 0.2), ("xfrac_std", 0.125),
    ("brightness", 0), ("contrast", 0), ("lumaflip", 0), ("hue", 0), ("saturation", 0),
    ("brightness_std", 0.2), ("contrast_std", 0.5), ("hue_max", 1), ("saturation_std", 1),
    ("imgfilter", 0), ("imgfilter_bands", [1, 1, 1, 1]), ("imgfilter_std", 1),
    ("noise", 0), ("cutout", 0), ("noise_std", 0.1), ("cutout_size", 0.5),
])


def test_constructor_has_the_official_kwargs_and_defaults():
    params = inspect.signature(AugmentPipe.__init__).parameters
    assert [k for k in params if k != "self"] == list(OFFICIAL_DEFAULTS)
    assert {k: params[k].default for k in OFFICIAL_DEFAULTS} == OFFICIAL_DEFAULTS
    a = AugmentPipe(**AUGPIPE_PRESETS["bgc"])
    assert a.class_name == "AugmentPipe"
    assert a.init_kwargs == {**OFFICIAL_DEFAULTS, **AUGPIPE_PRESETS["bgc"]}
    assert type(a.init_kwargs) is dict and all(type(v) in (float, list) for v in a.init_kwargs.values())
    assert float(a.p) == 1.0 and a.p.shape == ()
    b = AugmentPipe(**a.init_kwargs)  # rebuildable from its kwargs
    assert b.init_kwargs == a.init_kwargs


def test_settings_are_keyword_only_validated_and_recorded_as_a_private_copy():
    with pytest.raises(TypeError):
        AugmentPipe(1)  # the official pipes are always built from keyword arguments
    with pytest.raises(TypeError):
        AugmentPipe(xflip=1, flip=1)
    with pytest.raises(ValueError, match="imgfilter_bands"):
        AugmentPipe(imgfilter=1, imgfilter_bands=[1, 1])
    bands = [1, 2, 0, 4]
    a = AugmentPipe(imgfilter=1, imgfilter_bands=bands)
    bands[0] = 9
    assert a.init_kwargs["imgfilter_bands"] == [1.0, 2.0, 0.0, 4.0]
    assert all(type(b) is float for b in a.init_kwargs["imgfilter_bands"])
    assert json.loads(json.dumps(a.init_kwargs)) == a.init_kwargs  # stored as file metadata
    a.init_kwargs["imgfilter_bands"][1] = 7  # the record is not the pipe's live state
    assert AugmentPipe(**AugmentPipe(imgfilter=1).init_kwargs).init_kwargs == AugmentPipe(imgfilter=1).init_kwargs
    y = pipe(1.0, imgfilter=1, imgfilter_bands=[1, 2, 0, 4])(images(), debug_percentile=0.3)
    assert torch.equal(a(images(), debug_percentile=0.3), y)


def test_state_dict_matches_the_official_layout():
    a = AugmentPipe()
    assert {k: tuple(v.shape) for k, v in a.state_dict().items()} == {
        "p": (), "Hz_geom": (12,), "Hz_fbank": (4, 43)}
    state = {k: v.clone() for k, v in AugmentPipe(**AUGPIPE_PRESETS["bgcfnc"]).state_dict().items()}
    state["p"] = torch.tensor(0.375)
    a.load_state_dict(state, strict=True)
    assert float(a.p) == 0.375
    assert not list(a.parameters())


def test_presets_are_the_official_augpipe_specs():
    blit = dict(xflip=1, rotate90=1, xint=1)
    geom = dict(scale=1, rotate=1, aniso=1, xfrac=1)
    color = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
    assert AUGPIPE_PRESETS == {
        "blit": blit, "geom": geom, "color": color, "filter": dict(imgfilter=1), "noise": dict(noise=1),
        "cutout": dict(cutout=1), "bg": {**blit, **geom}, "bgc": {**blit, **geom, **color},
        "bgcf": {**blit, **geom, **color, "imgfilter": 1},
        "bgcfn": {**blit, **geom, **color, "imgfilter": 1, "noise": 1},
        "bgcfnc": {**blit, **geom, **color, "imgfilter": 1, "noise": 1, "cutout": 1},
    }


def test_filters():
    a = AugmentPipe()
    assert torch.allclose(a.Hz_geom.sum(), torch.tensor(1.0))
    # sym6 is orthogonal: its autocorrelation, downsampled by 2, is an impulse.
    h = a.Hz_geom.double().numpy() * math.sqrt(2)
    auto = np.convolve(h, h[::-1])
    impulse = np.eye(1, 6)[0]
    assert np.allclose(auto[11::2], impulse, atol=1e-6) and np.allclose(auto[11::-2], impulse, atol=1e-6)
    bank = filter_bank()
    assert bank.shape == (4, 43)
    assert np.allclose(bank.sum(axis=0), np.eye(1, 43, 21)[0], atol=1e-12)  # bands add up to the identity
    assert np.allclose(bank, bank[:, ::-1])  # zero phase
    assert np.allclose(bank[:, :].sum(axis=1), [1, 0, 0, 0])  # only the lowest band passes DC
    # higher bands pass higher frequencies: compare responses at Nyquist / 2^k
    resp = np.abs(np.fft.rfft(bank, 1024, axis=1))
    peaks = resp.argmax(axis=1)
    assert list(peaks) == sorted(peaks) and len(set(peaks)) == 4


# --- identity cases ------------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", sorted(AUGPIPE_PRESETS))
def test_p_zero_is_the_identity(preset):
    for res, c in [(16, 3), (32, 1)]:
        x = images(3, c, res)
        y = seeded(pipe(0.0, **AUGPIPE_PRESETS[preset]), x)
        assert y.shape == x.shape
        assert torch.allclose(y, x, atol=1e-5), (preset, res, c, (y - x).abs().max())


def test_disabled_pipe_returns_the_input_untouched():
    x = images()
    assert pipe(1.0)(x) is x


def test_geom_with_zero_ranges_is_the_identity():
    a = pipe(1.0, scale=1, rotate=1, aniso=1, xfrac=1, scale_std=0, rotate_max=0, aniso_std=0, xfrac_std=0)
    for res, c in [(16, 3), (32, 1), (17, 3)]:
        x = images(3, c, res)
        y = seeded(a, x)
        assert torch.allclose(y, x, atol=1e-5), (res, (y - x).abs().max())


def test_filter_with_zero_std_is_the_identity():
    a = pipe(1.0, imgfilter=1, imgfilter_std=0)
    for res in (8, 16, 32):  # 8 and 16 px are below the 43-tap kernel: padding keeps mirroring
        x = images(2, 3, res)
        assert torch.allclose(seeded(a, x), x, atol=1e-5)


def test_input_is_not_modified():
    x = images()
    x0 = x.clone()
    seeded(pipe(1.0, **AUGPIPE_PRESETS["bgcfnc"]), x)
    assert torch.equal(x, x0)


# --- pixel blitting -------------------------------------------------------------------------------------

def test_xflip_exact():
    x = images(16, 3, 16)
    a = pipe(1.0, exact_blit=True, xflip=1)
    assert torch.equal(a(x, debug_percentile=0.75), x.flip(3))
    assert torch.equal(a(x, debug_percentile=0.25), x)
    y = seeded(a, x)
    flipped = [torch.equal(yi, xi.flip(2)) for yi, xi in zip(y, x)]
    kept = [torch.equal(yi, xi) for yi, xi in zip(y, x)]
    assert all(f != k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


def test_xflip_through_the_resampling_path_is_close_to_a_flip():
    x = smooth_images()
    y = pipe(1.0, xflip=1)(x, debug_percentile=0.75)
    assert (y - x.flip(3)).abs().max() < 0.05
    assert (y - x).abs().max() > 0.5


@pytest.mark.parametrize("res", [16, 17])
def test_rotate90_exact(res):
    x = images(4, 3, res)
    a = pipe(1.0, exact_blit=True, rotate90=1)
    for k, q in enumerate([0.1, 0.3, 0.6, 0.9]):  # k = floor(4q) quarter turns
        assert torch.equal(a(x, debug_percentile=q), torch.rot90(x, k, dims=(2, 3)))
    y = seeded(a, images(32, 3, res))
    xs = images(32, 3, res)
    for yi, xi in zip(y, xs):
        assert sum(torch.equal(yi, torch.rot90(xi, k, dims=(1, 2))) for k in range(4)) == 1


def test_rotate90_through_the_resampling_path_is_close():
    x = smooth_images()
    y = pipe(1.0, rotate90=1)(x, debug_percentile=0.3)
    assert (y - torch.rot90(x, 1, dims=(2, 3))).abs().max() < 0.05


def shifted(x: torch.Tensor, dx: int, dy: int) -> np.ndarray:
    """Content moved by (+dx, +dy) pixels, with mirror padding (edge pixel not repeated) filling in:
    pad by reflection, np.roll, crop back."""
    arr = x.numpy()
    pad = max(abs(dx), abs(dy))
    padded = np.pad(arr, [(0, 0), (0, 0), (pad, pad), (pad, pad)], mode="reflect")
    rolled = np.roll(padded, (dy, dx), axis=(2, 3))
    h, w = arr.shape[2:]
    return rolled[:, :, pad:pad + h, pad:pad + w]


@pytest.mark.parametrize("exact_blit", [True, False])
def test_integer_translation(exact_blit):
    res = 16
    a = pipe(1.0, exact_blit=exact_blit, xint=1)
    x = images(4, 3, res)
    tol = 0 if exact_blit else 1e-5
    for q in (0.0, 0.2, 0.5, 0.75, 0.99):
        d = int(torch.round(torch.tensor((2 * q - 1) * 0.125 * res)))
        y = a(x, debug_percentile=q).numpy()
        assert np.allclose(y, shifted(x, d, d), atol=tol, rtol=0), q
    # random shifts: reproduce the draws (uniform offsets, then the per-sample gate)
    n = 24
    x = images(n, 1, res)
    y = seeded(a, x, seed=3).numpy()
    torch.manual_seed(3)
    t = (torch.rand([n, 2]) * 2 - 1) * 0.125
    torch.rand([n])  # the per-sample gate (always passes at p = 1)
    for i in range(n):
        dx, dy = (int(torch.round(t[i, j] * res)) for j in range(2))
        assert np.allclose(y[i:i + 1], shifted(x[i:i + 1], dx, dy), atol=tol, rtol=0), i


def test_exact_blit_is_only_used_without_general_geometry():
    x = smooth_images()
    exact = pipe(1.0, exact_blit=True, xflip=1, scale=1, scale_std=0)
    y = exact(x, debug_percentile=0.75)  # goes through resampling: close to, but not exactly, a flip
    assert not torch.equal(y, x.flip(3)) and (y - x.flip(3)).abs().max() < 0.05


# --- general geometry -----------------------------------------------------------------------------------

def test_geometry_matrices_follow_the_debug_quantiles():
    q = torch.tensor(0.8)
    z = torch.erfinv(q * 2 - 1)
    a = pipe(1.0, scale=1)
    G = a.sample_geometry(2, 16, 16, torch.device("cpu"), q)
    s = torch.exp2(z * 0.2)
    assert torch.allclose(G[:, 0, 0], 1 / s) and torch.allclose(G[:, 1, 1], 1 / s)
    a = pipe(1.0, aniso=1)
    G = a.sample_geometry(2, 16, 16, torch.device("cpu"), q)
    assert torch.allclose(G[:, 0, 0], 1 / s) and torch.allclose(G[:, 1, 1], s)
    a = pipe(1.0, rotate=1)
    G = a.sample_geometry(2, 16, 16, torch.device("cpu"), q)
    theta = (0.8 * 2 - 1) * math.pi  # pre-rotation; the post-rotation is zero in debug mode
    assert torch.allclose(G[0, :2, :2], torch.tensor([[math.cos(theta), -math.sin(theta)],
                                                      [math.sin(theta), math.cos(theta)]]), atol=1e-6)
    a = pipe(1.0, xfrac=1)
    G = a.sample_geometry(2, 16, 32, torch.device("cpu"), q)
    assert torch.allclose(G[0, :2, 2], -z * 0.125 * torch.tensor([32.0, 16.0]))
    assert pipe(1.0, brightness=1).sample_geometry(2, 16, 16, torch.device("cpu")) is None


def test_isotropic_scaling_zooms_about_the_centre():
    res = 32
    c = (res - 1) / 2
    ys, xs = torch.meshgrid(torch.arange(res) - c, torch.arange(res) - c, indexing="ij")

    def f(u, v):  # smooth test pattern in centred pixel coordinates
        return torch.sin(u / 6) * torch.cos(v / 7) + 0.1 * u / res

    x = f(xs, ys).reshape(1, 1, res, res)
    q = 0.5 + 0.5 * math.erf(0.5)  # so that erfinv(2q - 1) = 0.5
    s = 2 ** (0.5 * 0.2)  # log2-normal scale with scale_std 0.2
    y = pipe(1.0, scale=1)(x, debug_percentile=q)[0, 0]
    expect = f(xs / s, ys / s)
    inner = slice(6, res - 6)
    assert (y[inner, inner] - expect[inner, inner]).abs().max() < 0.02


def test_fractional_translation_moves_content():
    res = 32
    c = (res - 1) / 2
    ys, xs = torch.meshgrid(torch.arange(res) - c, torch.arange(res) - c, indexing="ij")

    def f(u, v):
        return torch.sin(u / 5 + 0.3) * torch.cos(v / 6)

    x = f(xs, ys).reshape(1, 1, res, res)
    q = 0.7
    t = float(torch.erfinv(torch.tensor(2 * q - 1)) * 0.125 * res)  # pixels, same in x and y
    y = pipe(1.0, xfrac=1)(x, debug_percentile=q)[0, 0]
    expect = f(xs - t, ys - t)
    inner = slice(8, res - 8)
    assert (y[inner, inner] - expect[inner, inner]).abs().max() < 0.02


# --- color ----------------------------------------------------------------------------------------------

def test_brightness_adds_a_per_sample_constant():
    for c in (3, 1):
        x = images(16, c, 16)
        y = seeded(pipe(1.0, brightness=1), x)
        d = (y - x).reshape(16, -1)
        assert torch.allclose(d, d[:, :1].expand_as(d), atol=1e-6)
        assert d[:, 0].abs().min() > 0 and d[:, 0].std() > 0.05
        q = 0.9
        yq = pipe(1.0, brightness=1)(x, debug_percentile=q)
        b = float(torch.erfinv(torch.tensor(2 * q - 1)) * 0.2)
        assert torch.allclose(yq - x, torch.full_like(x, b), atol=1e-6)


def test_contrast_scales_about_zero():
    x = images(8, 3, 16)
    q = 0.3
    c = float(torch.exp2(torch.erfinv(torch.tensor(2 * q - 1)) * 0.5))
    assert torch.allclose(pipe(1.0, contrast=1)(x, debug_percentile=q), x * c, atol=1e-6)


def test_hue_and_saturation_preserve_gray_and_luma():
    gray = images(8, 1, 16).repeat(1, 3, 1, 1)
    for kw in (dict(hue=1), dict(saturation=1), dict(hue=1, saturation=1)):
        assert torch.allclose(seeded(pipe(1.0, **kw), gray), gray, atol=1e-5)
    x = images(8, 3, 16)
    y = seeded(pipe(1.0, hue=1), x)
    assert torch.allclose(y.mean(dim=1), x.mean(dim=1), atol=1e-5)  # luma (projection on the gray axis) kept
    chroma = lambda t: t - t.mean(dim=1, keepdim=True)  # noqa: E731
    assert torch.allclose(chroma(y).norm(dim=1), chroma(x).norm(dim=1), atol=1e-5)  # a rotation
    assert not torch.allclose(y, x, atol=1e-2)
    C = pipe(1.0, hue=1).sample_color(8, 3, torch.device("cpu"))
    R = C[:, :3, :3]
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(8, 3, 3), atol=1e-6)
    assert torch.allclose(torch.linalg.det(R), torch.ones(8), atol=1e-5)
    assert torch.allclose(R @ torch.ones(3), torch.ones(8, 3), atol=1e-6)
    assert torch.equal(C[:, 3], torch.tensor([0.0, 0, 0, 1]).expand(8, 4))
    assert torch.equal(C[:, :3, 3], torch.zeros(8, 3))


def test_luma_flip_negates_gray():
    gray = images(4, 1, 8).repeat(1, 3, 1, 1)
    assert torch.allclose(pipe(1.0, lumaflip=1)(gray, debug_percentile=0.75), -gray, atol=1e-6)
    assert torch.allclose(pipe(1.0, lumaflip=1)(gray[:, :1], debug_percentile=0.75), -gray[:, :1], atol=1e-6)


def test_grayscale_color_uses_the_mean_rgb_row_and_skips_hue_and_saturation():
    x = images(8, 1, 16)
    kw = dict(brightness=1, contrast=1, lumaflip=1)
    rgb = seeded(pipe(1.0, **kw), x.repeat(1, 3, 1, 1), seed=4)
    gray = seeded(pipe(1.0, **kw), x, seed=4)
    assert torch.allclose(rgb, gray.expand_as(rgb), atol=1e-5)
    # hue/saturation on one channel: nothing happens and no random numbers are used
    torch.manual_seed(9)
    y = pipe(1.0, hue=1, saturation=1)(x)
    after = torch.rand(4)
    torch.manual_seed(9)
    assert torch.equal(y, x) and torch.equal(after, torch.rand(4))
    with pytest.raises(ValueError):
        pipe(1.0, brightness=1)(images(2, 2, 8))


# --- filter, noise, cutout ------------------------------------------------------------------------------

def test_filter_amplifies_the_lowest_band_on_flat_images():
    x = torch.full([2, 3, 16, 16], 0.5)
    q = 0.8
    t = float(torch.exp2(torch.erfinv(torch.tensor(2 * q - 1))))
    g0 = t / math.sqrt(10 / 13 * t * t + 3 / 13)  # normalised to the expected power
    y = pipe(1.0, imgfilter=1, imgfilter_bands=[1, 0, 0, 0])(x, debug_percentile=q)
    assert torch.allclose(y, x * g0 ** 2, atol=1e-5)  # separable: the gain applies along x and along y
    z = pipe(1.0, imgfilter=1, imgfilter_bands=[0, 0, 0, 1])(x, debug_percentile=q)
    assert torch.allclose(z, x / (10 / 13 + 2 / 13 + t * t / 13), atol=1e-5)


def test_noise_has_the_configured_std():
    n, std = 2000, 0.1
    x = torch.zeros([n, 1, 16, 16])
    y = seeded(pipe(1.0, noise=1, noise_std=std), x, seed=1)
    assert abs(float(y.square().mean().sqrt()) / std - 1) < 0.05  # E[σ²] = std² for a half-normal σ
    per_sample = y.reshape(n, -1).std(dim=1)
    assert abs(float(per_sample.median()) / (0.6745 * std) - 1) < 0.05  # half-normal median
    q = 0.6
    y = pipe(1.0, noise=1, noise_std=std)(torch.zeros([4, 3, 32, 32]), debug_percentile=q)
    sigma = float(torch.erfinv(torch.tensor(q))) * std
    assert torch.allclose(y.reshape(4, -1).std(dim=1), torch.full([4], sigma), rtol=0.05)


def test_cutout_zeroes_a_square_of_the_right_size():
    x = images(3, 3, 32) + 3  # no zeros in the input
    y = pipe(1.0, cutout=1)(x, debug_percentile=0.5)
    hole = torch.zeros(32, 32, dtype=torch.bool)
    hole[8:24, 8:24] = True
    assert torch.equal(y == 0, hole.expand_as(y)) and torch.equal(y[:, :, ~hole], x[:, :, ~hole])
    # random centres: reproduce the draws (gate, then centres)
    n, res = 16, 32
    x = images(n, 1, res) + 3
    y = seeded(pipe(1.0, cutout=1, cutout_size=0.25), x, seed=2)
    torch.manual_seed(2)
    torch.rand([n])
    centre = torch.rand([n, 2])
    pos = (torch.arange(res) + 0.5) / res
    for i in range(n):
        in_x = (pos - centre[i, 0]).abs() < 0.125
        in_y = (pos - centre[i, 1]).abs() < 0.125
        assert torch.equal(y[i, 0] == 0, in_y[:, None] & in_x[None, :])
        assert 1 <= int(in_x.sum()) <= 8 and 1 <= int(in_y.sum()) <= 8


# --- probabilities --------------------------------------------------------------------------------------

def test_probabilities_scale_with_p():
    n = 4000
    x = images(n, 1, 4)
    y = seeded(pipe(0.5, exact_blit=True, xflip=1), x, seed=5)
    changed = (y != x).flatten(1).any(dim=1).float().mean()
    assert abs(float(changed) - 0.25) < 0.03  # applied with p·xflip = 0.5, and then a flip half the time
    y = seeded(pipe(0.5, brightness=1), x, seed=6)
    assert abs(float((y != x).flatten(1).any(dim=1).float().mean()) - 0.5) < 0.03
    y = seeded(pipe(0.5, brightness=0.5), x, seed=7)
    assert abs(float((y != x).flatten(1).any(dim=1).float().mean()) - 0.25) < 0.03
    # rotation is split into a pre- and a post-rotation such that P(either) = rotate · p
    torch.manual_seed(8)
    G = pipe(0.5, rotate=1).sample_geometry(n, 8, 8, torch.device("cpu"))
    rotated = (G[:, :2, :2] - torch.eye(2)).abs().amax(dim=(1, 2)) > 1e-6
    assert abs(float(rotated.float().mean()) - 0.5) < 0.03


@pytest.mark.parametrize("rotate, p", [(1, 0.84), (2, 0.75)])
def test_two_rotations_share_the_rotate_probability(rotate, p):
    """Each of the two rotations happens with r = 1 - √(1 - rotate·p), so that one or both happen with
    probability rotate·p (capped at 1): 0.84 needs r = 0.6, while r = 0.84 would give 0.9744."""
    n = 4000
    torch.manual_seed(10)
    G = pipe(p, rotate=rotate).sample_geometry(n, 8, 8, torch.device("cpu"))
    rotated = (G[:, :2, :2] - torch.eye(2)).abs().amax(dim=(1, 2)) > 1e-6
    assert abs(float(rotated.float().mean()) - min(rotate * p, 1)) < 0.02


# --- every preset ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", sorted(AUGPIPE_PRESETS))
def test_presets_run_and_pass_gradients(preset):
    for res in (16, 32):
        for c in (3, 1):
            x = images(3, c, res, seed=res + c).requires_grad_(True)
            y = seeded(pipe(1.0, **AUGPIPE_PRESETS[preset]), x)
            assert y.shape == x.shape and torch.isfinite(y).all()
            w = torch.randn_like(y)
            (grad,) = torch.autograd.grad((y * w).sum(), x)
            assert torch.isfinite(grad).all() and grad.abs().sum() > 0, (preset, res, c)


def test_gradients_are_correct_and_twice_differentiable():
    a = pipe(0.8, **AUGPIPE_PRESETS["bgcfnc"])
    x = images(1, 3, 8, seed=1).double().requires_grad_(True)
    f = lambda t: seeded(a, t, seed=11)  # noqa: E731  fixed draws make it a deterministic function
    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5, fast_mode=True)
    # R1-style double backward: the penalty's gradient w.r.t. a 'discriminator' weight
    w = torch.randn(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    (gx,) = torch.autograd.grad((f(x) * w).sum(), x, create_graph=True)
    gx.square().sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0
