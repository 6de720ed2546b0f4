"""Adaptive discriminator augmentation (ADA): the differentiable augmentation pipeline.

Method: Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", appendix B.
Every image the discriminator sees (real or generated) goes through :class:`AugmentPipe`. Each
augmentation happens to each sample independently with probability ``p · strength``; the generator is
trained *through* the pipeline, so every stage is differentiable w.r.t. the images (twice, for R1).
The adaptive control of ``p`` lives in :mod:`stylegan.training.ada`.

Stages, in order:

* geometry — x-flip, quarter turns, integer translation ("blit"), then isotropic scaling, a rotation,
  anisotropic scaling, a second rotation and a fractional translation ("geom"). They fold into one inverse
  affine map per sample, executed by reflection padding, 2× upsampling with the ``sym6`` low-pass, bilinear
  ``grid_sample`` and 2× downsampling with the same filter. That path also carries flips and quarter turns
  (which therefore come out very slightly filtered, as in the official pipeline); ``exact_blit`` executes
  blit-only pipelines as exact pixel permutations instead;
* colour — brightness, contrast, luma flip, hue rotation and saturation as one 4×4 homogeneous matrix per
  sample (single-channel images use the mean of its RGB rows and skip hue and saturation);
* filter — random gains for four octave bands built from the ``sym2`` wavelet;
* corruptions — additive Gaussian noise with a half-normal per-sample strength, then cutout.

Random numbers are consumed in the same order, shapes and distributions as the official pipeline, so with
equal seeds both produce the same augmentations (outputs agree to a few 1e-5, from float rounding in the
resampling matrices). Deviation: the filter stage also accepts images smaller than its 43-tap kernel (the
official reflection padding fails below 22×22 pixels), by mirroring repeatedly.
``debug_percentile`` replaces every random parameter by a fixed quantile, for inspection and tests.

The module's state (``p`` and the two filter buffers) has the official keys and shapes, so official
snapshots load with ``strict=True``; the constructor takes the official keyword names (pickles and our
files store them as init kwargs).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stylegan.networks.init_record import records_init_kwargs
from stylegan.ops import make_filter, upfirdn2d, upsample2d

# Low-pass (scaling) filter coefficients of the Daubechies symlets used by the pipeline.
SYM2 = (-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025)
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)

# Relative power assumed for the four filter bands (lowest first), roughly a 1/f spectrum.
BAND_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)
NUM_BANDS = len(BAND_POWER)

_BLIT = dict(xflip=1, rotate90=1, xint=1)
_GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_COLOR = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)

# The --augpipe choices of the official train.py.
AUGPIPE_PRESETS: dict[str, dict[str, float]] = {
    "blit": dict(_BLIT),
    "geom": dict(_GEOM),
    "color": dict(_COLOR),
    "filter": dict(imgfilter=1),
    "noise": dict(noise=1),
    "cutout": dict(cutout=1),
    "bg": {**_BLIT, **_GEOM},
    "bgc": {**_BLIT, **_GEOM, **_COLOR},
    "bgcf": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1},
    "bgcfn": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1},
    "bgcfnc": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1, "cutout": 1},
}


# --- settings ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AugmentSettings:
    """Every knob of the pipeline, with the official names, order and defaults.

    A *strength* multiplies ``p`` to give the chance that its augmentation happens to a sample (0 turns
    it off); the other fields set the ranges of the random parameters. Angles are in half turns, scales and
    gains are log2-normal, translations are fractions of the image size.
    """

    # blit: pixel-exact geometry
    xflip: float = 0  # strength of a horizontal flip
    rotate90: float = 0  # strength of 0-3 quarter turns
    xint: float = 0  # strength of an integer translation ...
    xint_max: float = 0.125  # ... uniform up to this fraction of the size
    # geom: general geometry
    scale: float = 0  # strength of isotropic scaling
    rotate: float = 0  # chance (× p) that at least one of the two rotations happens
    aniso: float = 0  # strength of anisotropic scaling
    xfrac: float = 0  # strength of a fractional (Gaussian) translation
    scale_std: float = 0.2
    rotate_max: float = 1  # rotations are uniform in ±rotate_max half turns
    aniso_std: float = 0.2
    xfrac_std: float = 0.125
    # colour
    brightness: float = 0
    contrast: float = 0
    lumaflip: float = 0
    hue: float = 0
    saturation: float = 0
    brightness_std: float = 0.2  # additive, in image units
    contrast_std: float = 0.5
    hue_max: float = 1  # hue rotations are uniform in ±hue_max half turns
    saturation_std: float = 1
    # filter: random gains of four octave bands
    imgfilter: float = 0
    imgfilter_bands: tuple[float, ...] = (1, 1, 1, 1)  # per-band strength multipliers
    imgfilter_std: float = 1
    # corruptions
    noise: float = 0
    cutout: float = 0
    noise_std: float = 0.1  # scale of the half-normal per-sample noise std
    cutout_size: float = 0.5  # side of the cut-out square, as a fraction of the size

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            value = tuple(float(v) for v in value) if f.name == "imgfilter_bands" else float(value)
            object.__setattr__(self, f.name, value)
        if len(self.imgfilter_bands) != NUM_BANDS:
            raise ValueError(f"imgfilter_bands needs {NUM_BANDS} entries, got {len(self.imgfilter_bands)}")

    def as_init_kwargs(self) -> dict[str, float | list[float]]:
        """The settings as the constructor's keyword arguments (plain floats and a list), e.g. for file metadata."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    def enabled(self) -> list[str]:
        """Names of the augmentations with a positive strength."""
        strengths = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness", "contrast",
                     "lumaflip", "hue", "saturation", "imgfilter", "noise", "cutout")
        return [name for name in strengths if getattr(self, name) > 0]

    @property
    def general_geometry(self) -> bool:
        """Whether any geometric augmentation beyond flips, quarter turns and integer shifts is on."""
        return max(self.scale, self.rotate, self.aniso, self.xfrac) > 0


def _takes_augment_settings(init: Callable) -> Callable:
    """Give a ``(self, **settings)`` constructor the signature ``(self, *, xflip=0, …, cutout_size=0.5)``:
    the official names and defaults, for introspection and for recording the arguments."""
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for f in dataclasses.fields(AugmentSettings):
        default = list(f.default) if isinstance(f.default, tuple) else f.default
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default))
    init.__signature__ = inspect.Signature(params)
    return init


def _settings_record(arguments: dict) -> dict:
    """The stored init kwargs: every setting, numbers as floats, the band multipliers as a list."""
    return AugmentSettings(**arguments).as_init_kwargs()


# --- filters ---------------------------------------------------------------------------------------------

def filter_bank(lowpass: Sequence[float] = SYM2, octaves: int = 3) -> np.ndarray:
    """Zero-phase FIR bank splitting a signal into ``octaves + 1`` bands, lowest band first.

    With ``L`` and ``H`` the power-complementary half-band pair ``|h(z)|²/2`` and ``|h(-z)|²/2`` of the
    orthogonal low-pass ``h`` (``L + H = 1``), band ``k`` counted from the top is
    ``H(z^(2^k)) · Π_{j<k} L(z^(2^j))`` and the lowest band is ``Π_j L(z^(2^j))``: the rows sum to an
    impulse, so amplifying all bands by one is the identity. Rows are centred and zero-padded to equal length.
    """
    h = np.asarray(lowpass, dtype=np.float64)
    g = h * np.where(np.arange(h.size) % 2 == 0, 1.0, -1.0)
    half_lo = np.convolve(h, h[::-1]) / 2
    half_hi = np.convolve(g, g[::-1]) / 2

    def dilate(taps: np.ndarray, factor: int) -> np.ndarray:  # taps(z) -> taps(z^factor)
        out = np.zeros((taps.size - 1) * factor + 1)
        out[::factor] = taps
        return out

    smooth = np.ones(1)
    top_down = []
    for k in range(octaves):
        top_down.append(np.convolve(smooth, dilate(half_hi, 2 ** k)))
        smooth = np.convolve(smooth, dilate(half_lo, 2 ** k))
    rows = [smooth] + top_down[::-1]
    length = max(r.size for r in rows)
    bank = np.zeros((len(rows), length))
    for i, r in enumerate(rows):
        start = (length - r.size) // 2
        bank[i, start:start + r.size] = r
    return bank


# --- random parameters ---------------------------------------------------------------------------------

def _quantile_normal(q: torch.Tensor) -> torch.Tensor:
    """Standard-normal quantile of ``q`` up to the factor √2 (the debug convention of the official code)."""
    return torch.erfinv(q * 2 - 1)


def _either_of_two(probability: torch.Tensor) -> torch.Tensor:
    """Chance ``r`` for each of two independent draws such that at least one of them succeeds with
    ``probability``: ``1 - (1 - r)² = probability``."""
    miss_both = (1 - probability).clamp(0, 1)
    return 1 - miss_both.sqrt()


class _Draws:
    """The random parameters of one forward call, for ``n`` samples.

    Every method draws a value per sample and then one uniform number per sample that keeps the value with
    the given probability (else a neutral value), the order of the official pipeline. In debug mode
    (``quantile`` given) the result is replaced afterwards by the value at that quantile; the random numbers
    are still drawn, so later stages see the same stream as without debugging.
    """

    def __init__(self, n: int, device: torch.device, quantile: torch.Tensor | None):
        self.n, self.device, self.quantile = n, device, quantile

    def _settle(self, value: torch.Tensor, probability, neutral: float,
                at_quantile: Callable[[torch.Tensor], torch.Tensor | float]) -> torch.Tensor:
        happens = torch.rand([self.n], device=self.device) < probability
        happens = happens.reshape([self.n] + [1] * (value.ndim - 1))
        value = torch.where(happens, value, torch.full_like(value, neutral))
        return value if self.quantile is None else torch.full_like(value, at_quantile(self.quantile))

    def choice(self, count: int, probability) -> torch.Tensor:
        """``[n]`` integers uniform in ``0..count-1`` (as floats); 0 when not applied."""
        value = torch.floor(torch.rand([self.n], device=self.device) * count)
        return self._settle(value, probability, 0, lambda q: torch.floor(q * count))

    def symmetric(self, half_width: float, probability, dims: int | None = None,
                  at_quantile: Callable[[torch.Tensor], torch.Tensor | float] | None = None) -> torch.Tensor:
        """``[n]`` (or ``[n, dims]``) uniform in ±half_width; 0 when not applied."""
        shape = [self.n] if dims is None else [self.n, dims]
        value = (torch.rand(shape, device=self.device) * 2 - 1) * half_width
        return self._settle(value, probability, 0, at_quantile or (lambda q: (q * 2 - 1) * half_width))

    def normal(self, std: float, probability, dims: int | None = None) -> torch.Tensor:
        """``[n]`` (or ``[n, dims]``) Gaussian with ``std``; 0 when not applied."""
        shape = [self.n] if dims is None else [self.n, dims]
        value = torch.randn(shape, device=self.device) * std
        return self._settle(value, probability, 0, lambda q: _quantile_normal(q) * std)

    def log2_normal(self, std: float, probability,
                    at_quantile: Callable[[torch.Tensor], torch.Tensor | float] | None = None) -> torch.Tensor:
        """``[n]`` factors ``2^N(0, std²)``; 1 when not applied."""
        value = torch.exp2(torch.randn([self.n], device=self.device) * std)
        return self._settle(value, probability, 1, at_quantile or (lambda q: torch.exp2(_quantile_normal(q) * std)))

    def half_normal(self, scale: float, probability) -> torch.Tensor:
        """``[n]`` magnitudes ``|N(0, scale²)|``; 0 when not applied."""
        value = torch.randn([self.n], device=self.device).abs() * scale
        return self._settle(value, probability, 0, lambda q: torch.erfinv(q) * scale)

    def constant(self, value: float, probability) -> torch.Tensor:
        """``[n]`` copies of ``value``; 0 when not applied."""
        return self._settle(torch.full([self.n], value, device=self.device), probability, 0, lambda q: value)

    def position(self, dims: int) -> torch.Tensor:
        """``[n, dims]`` uniform in [0, 1), always applied; the quantile itself in debug mode."""
        value = torch.rand([self.n, dims], device=self.device)
        return value if self.quantile is None else torch.full_like(value, self.quantile)


# --- batched matrices ------------------------------------------------------------------------------------

def _matrices(rows: list[list], n: int, device: torch.device) -> torch.Tensor:
    """``[n, R, C]`` float32 matrices; each entry is a Python number or a per-sample ``[n]`` tensor."""
    out = torch.zeros([n, len(rows), len(rows[0])], device=device)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            out[:, i, j] = value
    return out


def _scaling(sx, sy, n: int, device: torch.device) -> torch.Tensor:
    return _matrices([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], n, device)


def _translation(tx, ty, n: int, device: torch.device) -> torch.Tensor:
    return _matrices([[1, 0, tx], [0, 1, ty], [0, 0, 1]], n, device)


def _rotation(theta: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(theta), torch.sin(theta)
    return _matrices([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta.shape[0], theta.device)


def _const3(*rows) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64)


# --- geometry: sampling ---------------------------------------------------------------------------------

def _blit_maps(s: AugmentSettings, p: torch.Tensor, draws: _Draws, height: int, width: int) -> list[torch.Tensor]:
    """Inverse maps of the pixel-exact operations, in the order they are drawn."""
    n, dev = draws.n, draws.device
    maps = []
    if s.xflip > 0:
        flip = draws.choice(2, p * s.xflip)
        maps.append(_scaling(1 - 2 * flip, 1, n, dev))
    if s.rotate90 > 0:
        quarter_turns = draws.choice(4, p * s.rotate90)
        maps.append(_rotation(quarter_turns * (np.pi / 2)))
    if s.xint > 0:
        shift = draws.symmetric(s.xint_max, p * s.xint, dims=2)
        maps.append(_translation(-torch.round(shift[:, 0] * width), -torch.round(shift[:, 1] * height), n, dev))
    return maps


def _general_maps(s: AugmentSettings, p: torch.Tensor, draws: _Draws, height: int,
                  width: int) -> list[torch.Tensor]:
    """Inverse maps of scaling, rotation, anisotropy, rotation and fractional translation."""
    n, dev = draws.n, draws.device
    each_rotation = _either_of_two(p * s.rotate)  # two chances, so that P(any rotation) = rotate · p
    half_turn = np.pi * s.rotate_max
    maps = []
    if s.scale > 0:
        zoom = draws.log2_normal(s.scale_std, p * s.scale)
        maps.append(_scaling(1 / zoom, 1 / zoom, n, dev))
    if s.rotate > 0:
        maps.append(_rotation(draws.symmetric(half_turn, each_rotation)))
    if s.aniso > 0:
        stretch = draws.log2_normal(s.aniso_std, p * s.aniso)
        maps.append(_scaling(1 / stretch, stretch, n, dev))
    if s.rotate > 0:  # the second rotation is off in debug mode, so the quantile gives one clean angle
        maps.append(_rotation(draws.symmetric(half_turn, each_rotation, at_quantile=lambda q: 0)))
    if s.xfrac > 0:
        shift = draws.normal(s.xfrac_std, p * s.xfrac, dims=2)
        maps.append(_translation(-shift[:, 0] * width, -shift[:, 1] * height, n, dev))
    return maps


# --- colour: sampling ------------------------------------------------------------------------------------

def _luma_axis(device: torch.device) -> torch.Tensor:
    """The unit gray direction ``[1, 1, 1, 0]/√3`` in homogeneous RGB."""
    return torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64).div(math.sqrt(3)).float().to(device)


def _axis_rotation(theta: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    """``[n, 4, 4]`` rotations by ``theta`` about the unit ``axis`` (xyz of a homogeneous vector), by
    Rodrigues' formula ``cos·I + sin·[a]× + (1 - cos)·a aᵀ``, with the homogeneous row kept."""
    n = theta.shape[0]
    eye = torch.eye(4, device=theta.device)
    ax, ay, az = axis[0], axis[1], axis[2]
    cross = torch.zeros([4, 4], device=theta.device)
    cross[0, 1], cross[0, 2] = -az, ay
    cross[1, 0], cross[1, 2] = az, -ax
    cross[2, 0], cross[2, 1] = -ay, ax
    cos, sin = torch.cos(theta).reshape(n, 1, 1), torch.sin(theta).reshape(n, 1, 1)
    rot = cos * eye + sin * cross + (1 - cos) * torch.outer(axis, axis)
    rot[:, 3, :] = eye[3]
    return rot


def _color_maps(s: AugmentSettings, p: torch.Tensor, draws: _Draws, num_channels: int) -> list[torch.Tensor]:
    """Colour matrices in the order they act (each later one applied after the earlier ones)."""
    n, dev = draws.n, draws.device
    eye = torch.eye(4, device=dev)
    luma = _luma_axis(dev)
    onto_luma = torch.outer(luma, luma)  # projection onto the gray axis; the homogeneous part untouched
    # Hue and saturation change nothing in a single channel: skipped, and no random numbers drawn for them.
    has_chroma = num_channels != 1
    maps = []
    if s.brightness > 0:
        b = draws.normal(s.brightness_std, p * s.brightness)
        maps.append(_matrices([[1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]], n, dev))
    if s.contrast > 0:
        c = draws.log2_normal(s.contrast_std, p * s.contrast)
        maps.append(_matrices([[c, 0, 0, 0], [0, c, 0, 0], [0, 0, c, 0], [0, 0, 0, 1]], n, dev))
    if s.lumaflip > 0:
        flip = draws.choice(2, p * s.lumaflip)
        maps.append(eye - 2 * onto_luma * flip.reshape(n, 1, 1))  # Householder reflection of the gray axis
    if has_chroma and s.hue > 0:
        maps.append(_axis_rotation(draws.symmetric(np.pi * s.hue_max, p * s.hue), luma))
    if has_chroma and s.saturation > 0:
        sat = draws.log2_normal(s.saturation_std, p * s.saturation)
        maps.append(onto_luma + (eye - onto_luma) * sat.reshape(n, 1, 1))
    return maps


# --- filter: sampling ------------------------------------------------------------------------------------

def _band_gains(s: AugmentSettings, p: torch.Tensor, draws: _Draws) -> torch.Tensor:
    """Per-sample gains ``[n, bands]`` of the filter bank.

    Each band draws an amplitude ``a`` (log2-normal); its effect is normalised so that the expected power
    of a 1/f image stays the same: the other bands are divided by ``√(Σ_j w_j + w_b (a² - 1))`` too. The
    gains are the product of those per-band factors.
    """
    weights = torch.tensor(BAND_POWER, dtype=torch.float64).float().to(draws.device)
    amplitudes = []
    for multiplier in s.imgfilter_bands:  # bands with multiplier 0 stay at 1, also in debug mode
        fixed = None if multiplier > 0 else (lambda q: 1)
        amplitudes.append(draws.log2_normal(s.imgfilter_std, p * s.imgfilter * multiplier, at_quantile=fixed))
    amps = torch.stack(amplitudes, dim=1)
    expected_power = weights.sum() + weights * (amps.square() - 1)  # [n, bands]: band b amplified alone
    return amps / expected_power.sqrt().prod(dim=1, keepdim=True)


# --- execution -------------------------------------------------------------------------------------------

def _compose(maps: list[torch.Tensor], later_on_left: bool) -> torch.Tensor:
    """One matrix per sample from a sequence; the later maps act after (on the left of) or before the earlier."""
    if later_on_left:
        return functools.reduce(lambda acc, m: m @ acc, maps)
    return functools.reduce(torch.matmul, maps)


def _reflect_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflection padding (edge pixel not repeated) by ``pad`` on every side, any ``pad``.

    Equals ``F.pad(..., mode='reflect')`` where that is defined (``pad`` < size) and keeps mirroring
    beyond it, so small images work too.
    """
    h, w = x.shape[-2:]
    if pad < h and pad < w:
        return F.pad(x, [pad] * 4, mode="reflect")

    def indices(size: int) -> torch.Tensor:
        i = torch.arange(-pad, size + pad, device=x.device)
        if size == 1:
            return torch.zeros_like(i)
        period = 2 * (size - 1)
        i = i.remainder(period)
        return torch.where(i > size - 1, period - i, i)

    return x.index_select(-2, indices(h)).index_select(-1, indices(w))


def permute_pixels(images: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Exact execution of pixel-permuting inverse maps ``[n, 3, 3]`` (flips, quarter turns, integer shifts
    of a square image), reflecting at the border like the resampling path and zero beyond its reach."""
    n, c, h, w = images.shape
    maps = maps.round()
    ys = (torch.arange(h, device=images.device, dtype=maps.dtype) - (h - 1) / 2).reshape(1, h, 1)
    xs = (torch.arange(w, device=images.device, dtype=maps.dtype) - (w - 1) / 2).reshape(1, 1, w)

    def source(row: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b, t = (maps[:, row, k].reshape(n, 1, 1) for k in range(3))
        s = torch.round(a * xs + b * ys + t + (size - 1) / 2).long()
        inside = (s >= -(size - 1)) & (s <= 2 * (size - 1))
        s = torch.where(s < 0, -s, s)
        s = torch.where(s > size - 1, 2 * (size - 1) - s, s)
        return s.clamp(0, size - 1), inside

    sx, in_x = source(0, w)
    sy, in_y = source(1, h)
    index = (sy * w + sx).reshape(n, 1, h * w).expand(n, c, h * w)
    out = images.reshape(n, c, h * w).gather(2, index).reshape(n, c, h, w)
    inside = (in_x & in_y).reshape(n, 1, h, w)
    return torch.where(inside, out, torch.zeros_like(out))


def _padding_for(maps: torch.Tensor, h: int, w: int, border: int) -> tuple[int, int, int, int]:
    """Reflection padding (left, right, top, bottom) that covers every sample's mapped corners plus the
    filter ``border`` (in input pixels), at most one image size per side."""
    cx, cy = (w - 1) / 2, (h - 1) / 2
    corners = torch.tensor([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1, 1, 1, 1]],
                           dtype=torch.float32, device=maps.device)
    reach = (maps @ corners)[:, :2, :].permute(1, 0, 2).flatten(1)  # [xy, n·corner]
    beyond = torch.cat([(-reach).amax(dim=1), reach.amax(dim=1)])  # [left, top, right, bottom]
    beyond = beyond + torch.tensor([2 * border - cx, 2 * border - cy] * 2, device=maps.device)
    cap = torch.tensor([w - 1, h - 1] * 2, device=maps.device, dtype=beyond.dtype)
    left, top, right, bottom = (int(v) for v in beyond.clamp(min=0).minimum(cap).ceil().tolist())
    return left, right, top, bottom


def _grid_theta(maps: torch.Tensor, padding: tuple[int, int, int, int], padded_up: tuple[int, int],
                out_size: tuple[int, int]) -> torch.Tensor:
    """``affine_grid`` matrices ``[n, 2, 3]``: output grid (normalised) → output pixels → ``maps`` (centred
    input pixels) → the upsampled, asymmetrically padded input (normalised, align_corners=False)."""
    left, right, top, bottom = padding
    up_h, up_w = padded_up
    out_h, out_w = out_size
    to_input = (_const3([2 / up_w, 0, 0], [0, 2 / up_h, 0], [0, 0, 1])     # upsampled px → normalised
                @ _const3([2, 0, -0.5], [0, 2, -0.5], [0, 0, 1])           # input px → upsampled px
                @ _const3([1, 0, (left - right) / 2], [0, 1, (top - bottom) / 2], [0, 0, 1]))
    from_output = (_const3([0.5, 0, 0.25], [0, 0.5, 0.25], [0, 0, 1])      # upsampled px → input px
                   @ _const3([out_w / 2, 0, 0], [0, out_h / 2, 0], [0, 0, 1]))  # normalised → px
    theta = (torch.as_tensor(to_input, dtype=torch.float32, device=maps.device) @ maps
             @ torch.as_tensor(from_output, dtype=torch.float32, device=maps.device))
    return theta[:, :2, :]


def resample(images: torch.Tensor, maps: torch.Tensor, lowpass: torch.Tensor) -> torch.Tensor:
    """Warp ``[n, c, h, w]`` images with inverse maps ``[n, 3, 3]``: reflect-pad, 2× up, bilinear sampling,
    2× down (``lowpass`` is the separable 1-D filter of both resamplings)."""
    n, c, h, w = images.shape
    f = lowpass.to(images.dtype)
    taps = f.shape[0]
    border = taps // 4  # output margin (in input pixels) that absorbs the downsampling filter
    padding = _padding_for(maps, h, w, border)
    left, right, top, bottom = padding
    x = upsample2d(F.pad(images, [left, right, top, bottom], mode="reflect"), f, up=2)
    out_h, out_w = (h + 2 * border) * 2, (w + 2 * border) * 2
    theta = _grid_theta(maps, padding, (x.shape[2], x.shape[3]), (out_h, out_w))
    grid = F.affine_grid(theta.to(x.dtype), [n, c, out_h, out_w], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    crop = [(taps - 1) // 2 - 2 * border, (taps - 2) // 2 - 2 * border] * 2
    return upfirdn2d(x, f, down=2, padding=crop, flip_filter=True)


def recolor(images: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
    """Apply homogeneous colour matrices ``[n, 4, 4]`` to RGB images, or their mean RGB row to one channel."""
    n, c, h, w = images.shape
    colors = colors.to(images.dtype)
    flat = images.reshape(n, c, h * w)
    if c == 3:
        flat = colors[:, :3, :3] @ flat + colors[:, :3, 3:]
    elif c == 1:
        row = colors[:, :3, :].mean(dim=1, keepdim=True)  # [n, 1, 4]: the average of the RGB outputs
        flat = flat * row[:, :, :3].sum(dim=2, keepdim=True) + row[:, :, 3:]
    else:
        raise ValueError(f"color augmentation needs RGB (3 channels) or L (1 channel) images, got {c}")
    return flat.reshape(n, c, h, w)


def amplify_bands(images: torch.Tensor, gains: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """Filter each sample separably with the band ``gains [n, bands]`` applied to ``bank [bands, taps]``."""
    n, c, h, w = images.shape
    taps = (gains @ bank).to(images.dtype)  # [n, T], symmetric
    taps = taps.repeat_interleave(c, dim=0)  # one filter per (sample, channel)
    x = _reflect_pad(images.reshape(1, n * c, h, w), bank.shape[1] // 2)
    x = F.conv2d(x, taps.reshape(n * c, 1, 1, -1), groups=n * c)
    x = F.conv2d(x, taps.reshape(n * c, 1, -1, 1), groups=n * c)
    return x.reshape(n, c, h, w)


def cut_out(images: torch.Tensor, side: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """Zero an axis-aligned square per sample: ``side [n]`` and ``centre [n, 2]`` (x, y) in image fractions,
    a pixel being inside when its centre is strictly closer than side/2 on both axes."""
    n, _, h, w = images.shape
    half = (side / 2).reshape(n, 1, 1)
    xs = ((torch.arange(w, device=images.device) + 0.5) / w).reshape(1, 1, w)
    ys = ((torch.arange(h, device=images.device) + 0.5) / h).reshape(1, h, 1)
    in_x = (xs - centre[:, 0].reshape(n, 1, 1)).abs() < half
    in_y = (ys - centre[:, 1].reshape(n, 1, 1)).abs() < half
    return images * (~(in_x & in_y)).unsqueeze(1).to(images.dtype)


# --- the module ------------------------------------------------------------------------------------------

class AugmentPipe(nn.Module):
    """The ADA augmentation pipeline; the keyword arguments are the fields of :class:`AugmentSettings`.

    The overall probability ``p`` is a buffer (initially 1), adjusted during training by ADA.
    """

    class_name = "AugmentPipe"

    # Execute blit-only pipelines (no scale/rotate/aniso/xfrac) as exact pixel permutations instead of
    # through the resampling path. Off by default to reproduce the official pixels: there, a flip or a
    # quarter turn passes through the not-quite-symmetric sym6 up/down filters and comes out slightly
    # filtered (up to ~0.1 on white-noise images, ~0.03 on smooth ones); integer shifts agree to float precision.
    exact_blit: bool = False

    @records_init_kwargs(normalize=_settings_record)
    @_takes_augment_settings
    def __init__(self, **settings):
        super().__init__()
        self.settings = AugmentSettings(**settings)
        self.register_buffer("p", torch.ones([]))  # overall augmentation probability
        self.register_buffer("Hz_geom", make_filter(SYM6, separable=True))  # geometric resampling low-pass
        self.register_buffer("Hz_fbank", torch.as_tensor(filter_bank(SYM2), dtype=torch.float32))


    def extra_repr(self) -> str:
        return f"p={float(self.p):.4f}, enabled=[{', '.join(self.settings.enabled())}]"

    def _draws(self, n: int, device: torch.device, debug_percentile) -> _Draws:
        quantile = None if debug_percentile is None else torch.as_tensor(
            debug_percentile, dtype=torch.float32, device=device)
        return _Draws(n, device, quantile)

    def sample_geometry(self, n: int, height: int, width: int, device: torch.device,
                        debug_percentile: torch.Tensor | float | None = None) -> torch.Tensor | None:
        """Per-sample inverse maps ``[n, 3, 3]`` (output pixel → input pixel, in pixel units centred on the
        image), or None when no geometric augmentation is enabled."""
        return self._geometry(self._draws(n, device, debug_percentile), height, width)

    def sample_color(self, n: int, num_channels: int, device: torch.device,
                     debug_percentile: torch.Tensor | float | None = None) -> torch.Tensor | None:
        """Per-sample homogeneous colour matrices ``[n, 4, 4]`` (colour_out = C @ colour_in), or None when no
        colour augmentation applies (hue and saturation are skipped for single-channel images)."""
        return self._color(self._draws(n, device, debug_percentile), num_channels)

    def _geometry(self, draws: _Draws, height: int, width: int) -> torch.Tensor | None:
        maps = (_blit_maps(self.settings, self.p, draws, height, width)
                + _general_maps(self.settings, self.p, draws, height, width))
        return _compose(maps, later_on_left=False) if maps else None  # later maps act first on output pixels

    def _color(self, draws: _Draws, num_channels: int) -> torch.Tensor | None:
        maps = _color_maps(self.settings, self.p, draws, num_channels)
        return _compose(maps, later_on_left=True) if maps else None

    def forward(self, images: torch.Tensor, debug_percentile: float | None = None) -> torch.Tensor:
        """Augment ``[N, C, H, W]`` images (any range); returns a new tensor of the same shape, or the input
        itself when nothing is enabled. ``debug_percentile`` in [0, 1] fixes every random parameter."""
        if not (torch.is_tensor(images) and images.ndim == 4):
            raise ValueError("AugmentPipe expects images as an [N, C, H, W] tensor")
        n, c, h, w = images.shape
        s = self.settings
        draws = self._draws(n, images.device, debug_percentile)

        maps = self._geometry(draws, h, w)
        if maps is not None:
            pixel_exact = self.exact_blit and not s.general_geometry and (h == w or s.rotate90 == 0)
            images = permute_pixels(images, maps) if pixel_exact else resample(images, maps, self.Hz_geom)

        colors = self._color(draws, c)
        if colors is not None:
            images = recolor(images, colors)

        if s.imgfilter > 0:
            images = amplify_bands(images, _band_gains(s, self.p, draws), self.Hz_fbank)

        if s.noise > 0:
            sigma = draws.half_normal(s.noise_std, self.p * s.noise)
            noise = torch.randn([n, c, h, w], device=images.device)
            images = images + noise.to(images.dtype) * sigma.to(images.dtype).reshape(n, 1, 1, 1)

        if s.cutout > 0:
            side = draws.constant(s.cutout_size, self.p * s.cutout)
            images = cut_out(images, side, draws.position(2))

        return images


__all__ = ["AugmentPipe", "AugmentSettings", "AUGPIPE_PRESETS", "filter_bank"]
