"""Adaptive discriminator augmentation (ADA): a differentiable augmentation pipeline and the p controller.

Method: Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", appendix B.
Every image the discriminator sees (real or generated) goes through :class:`AugmentPipe`; each
augmentation is applied to each sample independently with probability ``p * multiplier``, and the
generator is trained *through* the pipeline, so everything is differentiable w.r.t. the images.

Stages, in order:

* geometry — x-flip, 90° rotations, integer translation ("blit") and isotropic scaling, pre-rotation,
  anisotropic scaling, post-rotation, fractional translation ("geom"), all folded into one inverse affine
  map per sample. It is executed by reflection-padding, 2× upsampling with the ``sym6`` wavelet low-pass,
  bilinear ``grid_sample`` and 2× downsampling with the same filter (as the official code does, also for
  flips and quarter turns, which therefore come out very slightly filtered; set ``exact_blit`` for
  lossless pixel permutations when only blit operations are enabled);
* color — brightness, contrast, luma flip, hue rotation, saturation as one 4×4 homogeneous color matrix
  (grayscale images use the mean of its RGB rows; hue and saturation are skipped for them);
* filter — random amplification of four octave bands built from the ``sym2`` wavelet;
* corruptions — additive Gaussian noise with a half-normal per-sample std, and cutout.

Random numbers are drawn in the same order, shapes and distributions as the official pipeline, so with
equal seeds both produce the same augmentations (outputs agree to a few 1e-5, from float rounding in the
resampling matrices). Deviation: the filter stage also works on images smaller than its 43-tap kernel (the official
reflection padding fails below 22×22 pixels); we keep mirroring instead.
``debug_percentile`` replaces every random parameter by a fixed quantile, for inspection and tests.

The module's state (``p`` and the two filter buffers) has the same keys and shapes as the official
``AugmentPipe``, so official snapshots load with ``strict=True``.
"""

from __future__ import annotations

import inspect
import math
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stylegan.ops import make_filter, upfirdn2d, upsample2d

# Low-pass (scaling) filter coefficients of the Daubechies symlets used by the pipeline.
SYM2 = (-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025)
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)

# Relative power assumed for the four filter bands (lowest first), roughly a 1/f spectrum.
BAND_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)

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


# --- small batched-matrix helpers ----------------------------------------------------------------------

def _matrices(rows: list[list], n: int, device: torch.device) -> torch.Tensor:
    """``[n, R, C]`` float32 matrices; each entry is a Python number or a per-sample ``[n]`` tensor."""
    out = torch.zeros([n, len(rows), len(rows[0])], device=device)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            out[:, i, j] = value
    return out


def _scale2(sx, sy, n, device):
    return _matrices([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], n, device)


def _shift2(tx, ty, n, device):
    return _matrices([[1, 0, tx], [0, 1, ty], [0, 0, 1]], n, device)


def _rot2(theta: torch.Tensor):
    c, s = torch.cos(theta), torch.sin(theta)
    return _matrices([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta.shape[0], theta.device)


def _const3(*rows) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64)


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


def _erfinv_quantile(q: torch.Tensor) -> torch.Tensor:
    """Standard-normal quantile of ``q`` up to the factor √2 (the official debug convention)."""
    return torch.erfinv(q * 2 - 1)


class AugmentPipe(nn.Module):
    """The ADA augmentation pipeline. Arguments are per-augmentation probability multipliers (0 = off)
    and the ranges of their random parameters, with the official names and defaults:

    blit: ``xflip``, ``rotate90``, ``xint`` (integer translation up to ``xint_max`` of the image size);
    geom: ``scale`` (log2 std ``scale_std``), ``rotate`` (uniform up to ``rotate_max`` turns, applied before
    and after the anisotropic scaling, each with the probability that makes "either" equal ``rotate·p``),
    ``aniso`` (log2 std ``aniso_std``), ``xfrac`` (Gaussian translation, std ``xfrac_std`` of the size);
    color: ``brightness`` (additive, std ``brightness_std``), ``contrast`` (log2 std ``contrast_std``),
    ``lumaflip``, ``hue`` (rotation about the gray axis up to ``hue_max`` turns), ``saturation``
    (log2 std ``saturation_std``); filter: ``imgfilter`` with per-band multipliers ``imgfilter_bands`` and
    log2 std ``imgfilter_std``; corruptions: ``noise`` (half-normal std with scale ``noise_std``) and
    ``cutout`` (a square of side ``cutout_size`` of the image).

    The overall probability ``p`` is a buffer (initially 1), adjusted during training by ADA.
    """

    class_name = "AugmentPipe"

    # Execute blit-only pipelines (no scale/rotate/aniso/xfrac) as exact pixel permutations instead of
    # through the resampling path. Off by default to reproduce the official pixels: there, a flip or a
    # quarter turn passes through the not-quite-symmetric sym6 up/down filters and comes out slightly
    # filtered (up to ~0.1 on white-noise images, ~0.03 on smooth ones); integer shifts agree to float precision.
    exact_blit: bool = False

    def __init__(
        self,
        xflip=0, rotate90=0, xint=0, xint_max=0.125,
        scale=0, rotate=0, aniso=0, xfrac=0, scale_std=0.2, rotate_max=1, aniso_std=0.2, xfrac_std=0.125,
        brightness=0, contrast=0, lumaflip=0, hue=0, saturation=0,
        brightness_std=0.2, contrast_std=0.5, hue_max=1, saturation_std=1,
        imgfilter=0, imgfilter_bands=[1, 1, 1, 1], imgfilter_std=1,  # noqa: B006 (copied, never mutated)
        noise=0, cutout=0, noise_std=0.1, cutout_size=0.5,
    ):
        super().__init__()
        settings = dict(
            xflip=xflip, rotate90=rotate90, xint=xint, xint_max=xint_max,
            scale=scale, rotate=rotate, aniso=aniso, xfrac=xfrac, scale_std=scale_std, rotate_max=rotate_max,
            aniso_std=aniso_std, xfrac_std=xfrac_std,
            brightness=brightness, contrast=contrast, lumaflip=lumaflip, hue=hue, saturation=saturation,
            brightness_std=brightness_std, contrast_std=contrast_std, hue_max=hue_max,
            saturation_std=saturation_std,
            imgfilter=imgfilter, imgfilter_std=imgfilter_std,
            noise=noise, cutout=cutout, noise_std=noise_std, cutout_size=cutout_size,
        )
        settings = {k: float(v) for k, v in settings.items()}
        for name, value in settings.items():
            setattr(self, name, value)
        self.imgfilter_bands = [float(b) for b in imgfilter_bands]
        self.init_kwargs = {k: (list(self.imgfilter_bands) if k == "imgfilter_bands" else settings[k])
                            for k in inspect.signature(AugmentPipe.__init__).parameters if k != "self"}

        self.register_buffer("p", torch.ones([]))  # overall augmentation probability
        self.register_buffer("Hz_geom", make_filter(SYM6, separable=True))  # geometric resampling low-pass
        self.register_buffer("Hz_fbank", torch.as_tensor(filter_bank(SYM2), dtype=torch.float32))

    def extra_repr(self) -> str:
        on = [k for k in ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness",
                          "contrast", "lumaflip", "hue", "saturation", "imgfilter", "noise", "cutout")
              if getattr(self, k) > 0]
        return f"p={float(self.p):.4f}, enabled=[{', '.join(on)}]"

    # --- random parameters ---------------------------------------------------------------------------

    def _gate(self, value: torch.Tensor, multiplier, neutral: float) -> torch.Tensor:
        """Keep each sample's ``value`` with probability ``multiplier`` (× p unless a tensor is given),
        else the ``neutral`` value. Draws one uniform number per sample, after the value's own draw."""
        n = value.shape[0]
        prob = multiplier if torch.is_tensor(multiplier) else multiplier * self.p
        keep = torch.rand([n], device=value.device) < prob
        keep = keep.reshape([n] + [1] * (value.ndim - 1))
        return torch.where(keep, value, torch.full_like(value, neutral))

    def sample_geometry(self, n: int, height: int, width: int, device: torch.device,
                        debug_percentile: torch.Tensor | None = None) -> torch.Tensor | None:
        """Per-sample inverse maps ``[n, 3, 3]`` (output pixel → input pixel, in pixel units centred on the
        image), or None when no geometric augmentation is enabled."""
        dbg = debug_percentile
        G = None

        def then(M):  # append M on the right: it acts first on the output coordinates
            nonlocal G
            G = M if G is None else G @ M

        if self.xflip > 0:
            i = self._gate(torch.floor(torch.rand([n], device=device) * 2), self.xflip, 0)
            if dbg is not None:
                i = torch.full_like(i, torch.floor(dbg * 2))
            then(_scale2(1 - 2 * i, 1, n, device))
        if self.rotate90 > 0:
            i = self._gate(torch.floor(torch.rand([n], device=device) * 4), self.rotate90, 0)
            if dbg is not None:
                i = torch.full_like(i, torch.floor(dbg * 4))
            then(_rot2(i * (np.pi / 2)))
        if self.xint > 0:
            t = self._gate((torch.rand([n, 2], device=device) * 2 - 1) * self.xint_max, self.xint, 0)
            if dbg is not None:
                t = torch.full_like(t, (dbg * 2 - 1) * self.xint_max)
            then(_shift2(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height), n, device))

        if self.scale > 0:
            s = self._gate(torch.exp2(torch.randn([n], device=device) * self.scale_std), self.scale, 1)
            if dbg is not None:
                s = torch.full_like(s, torch.exp2(_erfinv_quantile(dbg) * self.scale_std))
            then(_scale2(1 / s, 1 / s, n, device))
        # Two independent rotations, each with probability q such that 1 - (1 - q)² = rotate·p.
        p_rot = 1 - torch.sqrt((1 - self.rotate * self.p).clamp(0, 1))
        if self.rotate > 0:
            theta = self._gate((torch.rand([n], device=device) * 2 - 1) * (np.pi * self.rotate_max), p_rot, 0)
            if dbg is not None:
                theta = torch.full_like(theta, (dbg * 2 - 1) * np.pi * self.rotate_max)
            then(_rot2(theta))
        if self.aniso > 0:
            s = self._gate(torch.exp2(torch.randn([n], device=device) * self.aniso_std), self.aniso, 1)
            if dbg is not None:
                s = torch.full_like(s, torch.exp2(_erfinv_quantile(dbg) * self.aniso_std))
            then(_scale2(1 / s, s, n, device))
        if self.rotate > 0:
            theta = self._gate((torch.rand([n], device=device) * 2 - 1) * (np.pi * self.rotate_max), p_rot, 0)
            if dbg is not None:
                theta = torch.zeros_like(theta)
            then(_rot2(theta))
        if self.xfrac > 0:
            t = self._gate(torch.randn([n, 2], device=device) * self.xfrac_std, self.xfrac, 0)
            if dbg is not None:
                t = torch.full_like(t, _erfinv_quantile(dbg) * self.xfrac_std)
            then(_shift2(-t[:, 0] * width, -t[:, 1] * height, n, device))
        return G

    def sample_color(self, n: int, num_channels: int, device: torch.device,
                     debug_percentile: torch.Tensor | None = None) -> torch.Tensor | None:
        """Per-sample homogeneous color matrices ``[n, 4, 4]`` (color_out = C @ color_in), or None when no
        color augmentation applies (hue and saturation are skipped for single-channel images)."""
        dbg = debug_percentile
        C = None

        def then(M):  # prepend M: it acts after everything so far
            nonlocal C
            C = M if C is None else M @ C

        eye = torch.eye(4, device=device)
        gray = torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64).div(math.sqrt(3)).float().to(device)
        gray_proj = torch.outer(gray, gray)  # projection onto the luma axis (homogeneous part untouched)

        if self.brightness > 0:
            b = self._gate(torch.randn([n], device=device) * self.brightness_std, self.brightness, 0)
            if dbg is not None:
                b = torch.full_like(b, _erfinv_quantile(dbg) * self.brightness_std)
            then(_matrices([[1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]], n, device))
        if self.contrast > 0:
            c = self._gate(torch.exp2(torch.randn([n], device=device) * self.contrast_std), self.contrast, 1)
            if dbg is not None:
                c = torch.full_like(c, torch.exp2(_erfinv_quantile(dbg) * self.contrast_std))
            then(_matrices([[c, 0, 0, 0], [0, c, 0, 0], [0, 0, c, 0], [0, 0, 0, 1]], n, device))
        if self.lumaflip > 0:
            i = self._gate(torch.floor(torch.rand([n], device=device) * 2), self.lumaflip, 0)
            if dbg is not None:
                i = torch.full_like(i, torch.floor(dbg * 2))
            then(eye - 2 * gray_proj * i.reshape(n, 1, 1))  # Householder reflection of the luma axis
        if self.hue > 0 and num_channels > 1:
            theta = self._gate((torch.rand([n], device=device) * 2 - 1) * (np.pi * self.hue_max), self.hue, 0)
            if dbg is not None:
                theta = torch.full_like(theta, (dbg * 2 - 1) * np.pi * self.hue_max)
            # Rodrigues: R = cos·I + sin·[v]× + (1 - cos)·v vᵀ, a rotation about the gray axis v.
            ax, ay, az = gray[0], gray[1], gray[2]
            cross = torch.zeros([4, 4], device=device)
            cross[0, 1], cross[0, 2] = -az, ay
            cross[1, 0], cross[1, 2] = az, -ax
            cross[2, 0], cross[2, 1] = -ay, ax
            cos, sin = torch.cos(theta).reshape(n, 1, 1), torch.sin(theta).reshape(n, 1, 1)
            rot = cos * eye + sin * cross + (1 - cos) * gray_proj
            rot[:, 3, :] = eye[3]  # keep the homogeneous row
            then(rot)
        if self.saturation > 0 and num_channels > 1:
            s = self._gate(torch.exp2(torch.randn([n], device=device) * self.saturation_std), self.saturation, 1)
            if dbg is not None:
                s = torch.full_like(s, torch.exp2(_erfinv_quantile(dbg) * self.saturation_std))
            then(gray_proj + (eye - gray_proj) * s.reshape(n, 1, 1))
        return C

    def sample_band_gains(self, n: int, device: torch.device,
                          debug_percentile: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample gains ``[n, bands]`` of the filter bank, normalised to keep the expected power."""
        num_bands = self.Hz_fbank.shape[0]
        if len(self.imgfilter_bands) != num_bands:
            raise ValueError(f"imgfilter_bands needs {num_bands} entries, got {len(self.imgfilter_bands)}")
        power = torch.tensor(BAND_POWER, dtype=torch.float64).float().to(device)
        gains = torch.ones([n, num_bands], device=device)
        for band, band_mult in enumerate(self.imgfilter_bands):
            amp = torch.exp2(torch.randn([n], device=device) * self.imgfilter_std)
            amp = self._gate(amp, self.imgfilter * self.p * band_mult, 1)
            if debug_percentile is not None:
                amp = (torch.full_like(amp, torch.exp2(_erfinv_quantile(debug_percentile) * self.imgfilter_std))
                       if band_mult > 0 else torch.ones_like(amp))
            one_band = torch.ones([n, num_bands], device=device)
            one_band[:, band] = amp
            one_band = one_band / (one_band.square() * power).sum(dim=1, keepdim=True).sqrt()
            gains = gains * one_band
        return gains

    # --- execution -----------------------------------------------------------------------------------

    def _blit(self, images: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        """Exact execution of a pixel-permuting ``G`` (flips, quarter turns, integer shifts of a square
        image), reflecting at the border like the padded resampling path and zero beyond its reach."""
        n, c, h, w = images.shape
        G = G.round()
        ys = torch.arange(h, device=images.device, dtype=G.dtype) - (h - 1) / 2
        xs = torch.arange(w, device=images.device, dtype=G.dtype) - (w - 1) / 2
        ys, xs = ys.reshape(1, h, 1), xs.reshape(1, 1, w)

        def source(row: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
            a, b, t = (G[:, row, k].reshape(n, 1, 1) for k in range(3))
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

    def _warp(self, images: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        """Resample with the inverse maps ``G``: reflect-pad, 2× up, bilinear sampling, 2× down."""
        n, c, h, w = images.shape
        f = self.Hz_geom.to(images.dtype)
        taps = f.shape[0]
        border = taps // 4  # output margin (in input pixels) that absorbs the downsampling filter
        cx, cy = (w - 1) / 2, (h - 1) / 2

        # Reflection padding wide enough for every sample's transformed corners plus the filters.
        corners = torch.tensor([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1, 1, 1, 1]],
                               dtype=torch.float32, device=G.device)
        reach = (G @ corners)[:, :2, :].permute(1, 0, 2).flatten(1)  # [xy, n·corner]
        need = torch.cat([(-reach).amax(dim=1), reach.amax(dim=1)])  # [left, top, right, bottom]
        need = need + torch.tensor([2 * border - cx, 2 * border - cy] * 2, device=G.device)
        need = need.clamp(min=0).minimum(torch.tensor([w - 1, h - 1] * 2, device=G.device, dtype=need.dtype))
        left, top, right, bottom = (int(v) for v in need.ceil().tolist())
        images = F.pad(images, [left, right, top, bottom], mode="reflect")
        images = upsample2d(images, f, up=2)

        # Map output grid → G (centred input pixels, shifted by the asymmetric padding) → upsampled grid,
        # in the normalised coordinates of affine_grid (align_corners=False).
        out_h, out_w = (h + 2 * border) * 2, (w + 2 * border) * 2
        up_h, up_w = images.shape[2], images.shape[3]
        to_input = (_const3([2 / up_w, 0, 0], [0, 2 / up_h, 0], [0, 0, 1])     # upsampled px → normalised
                    @ _const3([2, 0, -0.5], [0, 2, -0.5], [0, 0, 1])           # input px → upsampled px
                    @ _const3([1, 0, (left - right) / 2], [0, 1, (top - bottom) / 2], [0, 0, 1]))
        from_output = (_const3([0.5, 0, 0.25], [0, 0.5, 0.25], [0, 0, 1])      # upsampled px → input px
                       @ _const3([out_w / 2, 0, 0], [0, out_h / 2, 0], [0, 0, 1]))  # normalised → px
        theta = (torch.as_tensor(to_input, dtype=torch.float32, device=G.device) @ G
                 @ torch.as_tensor(from_output, dtype=torch.float32, device=G.device))
        grid = F.affine_grid(theta[:, :2, :].to(images.dtype), [n, c, out_h, out_w], align_corners=False)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

        crop = [(taps - 1) // 2 - 2 * border, (taps - 2) // 2 - 2 * border] * 2
        return upfirdn2d(images, f, down=2, padding=crop, flip_filter=True)

    @staticmethod
    def _recolor(images: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
        n, c, h, w = images.shape
        C = C.to(images.dtype)
        flat = images.reshape(n, c, h * w)
        if c == 3:
            flat = C[:, :3, :3] @ flat + C[:, :3, 3:]
        elif c == 1:
            row = C[:, :3, :].mean(dim=1, keepdim=True)  # [n, 1, 4]: the average of the RGB outputs
            flat = flat * row[:, :, :3].sum(dim=2, keepdim=True) + row[:, :, 3:]
        else:
            raise ValueError(f"color augmentation needs RGB (3 channels) or L (1 channel) images, got {c}")
        return flat.reshape(n, c, h, w)

    def _amplify_bands(self, images: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
        n, c, h, w = images.shape
        taps = (gains @ self.Hz_fbank).to(images.dtype)  # [n, T], symmetric
        taps = taps.repeat_interleave(c, dim=0)  # one filter per (sample, channel)
        half = self.Hz_fbank.shape[1] // 2
        x = _reflect_pad(images.reshape(1, n * c, h, w), half)
        x = F.conv2d(x, taps.reshape(n * c, 1, 1, -1), groups=n * c)
        x = F.conv2d(x, taps.reshape(n * c, 1, -1, 1), groups=n * c)
        return x.reshape(n, c, h, w)

    def forward(self, images: torch.Tensor, debug_percentile: float | None = None) -> torch.Tensor:
        if not (torch.is_tensor(images) and images.ndim == 4):
            raise ValueError("AugmentPipe expects images as an [N, C, H, W] tensor")
        n, c, h, w = images.shape
        device = images.device
        dbg = None if debug_percentile is None else torch.as_tensor(debug_percentile, dtype=torch.float32,
                                                                      device=device)

        G = self.sample_geometry(n, h, w, device, dbg)
        if G is not None:
            geom_on = any(getattr(self, k) > 0 for k in ("scale", "rotate", "aniso", "xfrac"))
            permutes_pixels = not geom_on and (h == w or self.rotate90 == 0)
            images = self._blit(images, G) if (self.exact_blit and permutes_pixels) else self._warp(images, G)

        C = self.sample_color(n, c, device, dbg)
        if C is not None:
            images = self._recolor(images, C)

        if self.imgfilter > 0:
            images = self._amplify_bands(images, self.sample_band_gains(n, device, dbg))

        if self.noise > 0:
            sigma = torch.randn([n], device=device).abs() * self.noise_std
            sigma = self._gate(sigma, self.noise, 0)
            if dbg is not None:
                sigma = torch.full_like(sigma, torch.erfinv(dbg) * self.noise_std)
            noise = torch.randn([n, c, h, w], device=device)
            images = images + noise.to(images.dtype) * sigma.to(images.dtype).reshape(n, 1, 1, 1)

        if self.cutout > 0:
            size = self._gate(torch.full([n], self.cutout_size, device=device), self.cutout, 0)
            center = torch.rand([n, 2], device=device)
            if dbg is not None:
                size = torch.full_like(size, self.cutout_size)
                center = torch.full_like(center, float(dbg))
            half = (size / 2).reshape(n, 1, 1)
            xs = ((torch.arange(w, device=device) + 0.5) / w).reshape(1, 1, w)
            ys = ((torch.arange(h, device=device) + 0.5) / h).reshape(1, h, 1)
            hole = ((xs - center[:, 0].reshape(n, 1, 1)).abs() < half) & \
                   ((ys - center[:, 1].reshape(n, 1, 1)).abs() < half)
            images = images * (~hole).unsqueeze(1).to(images.dtype)

        return images


# --- adaptive p ---------------------------------------------------------------------------------------

def ada_adjustment(rt: float, target: float, batch_size: int, interval: int, kimg: float) -> float:
    """The ADA step: ``sign(rt - target) · batch_size · interval / (kimg · 1000)``, where ``rt`` is the
    mean of sign(D(real)) over the last ``interval`` minibatches (``rt`` > target means D overfits)."""
    sign = (rt > target) - (rt < target)
    return sign * (batch_size * interval) / (kimg * 1000)


class AdaController:
    """Adaptive augmentation probability, as in the official training loop.

    Report the discriminator's raw outputs on reals with :meth:`accumulate` (any number of times per
    minibatch), then call :meth:`end_batch` once per minibatch. Every ``interval`` minibatches p moves by
    :func:`ada_adjustment` (p never goes below 0) and the accumulated signs are cleared; the return value is
    the current p, to be written into ``AugmentPipe.p``. Intervals without any report leave p unchanged.
    ``reduce`` (optional) maps the local ``(sign_sum, count)`` to the sums over all processes.
    """

    def __init__(self, batch_size: int, target: float = 0.6, interval: int = 4, kimg: float = 500,
                 p: float = 0.0):
        if batch_size <= 0 or interval <= 0 or kimg <= 0:
            raise ValueError("AdaController needs a positive batch_size, interval and kimg")
        self.batch_size, self.interval = int(batch_size), int(interval)
        self.target, self.kimg = float(target), float(kimg)
        self.p = float(p)
        self.sign_sum = 0.0
        self.sign_count = 0
        self.num_batches = 0

    def accumulate(self, real_logits: torch.Tensor) -> None:
        signs = torch.sign(real_logits.detach()).flatten()
        self.add(float(signs.sum()), signs.numel())

    def add(self, sign_sum: float, count: int) -> None:
        self.sign_sum += float(sign_sum)
        self.sign_count += int(count)

    def end_batch(self, reduce: Callable[[float, int], tuple[float, int]] | None = None) -> float:
        self.num_batches += 1
        if self.num_batches % self.interval == 0:
            total, count = self.sign_sum, self.sign_count
            if reduce is not None:
                total, count = reduce(total, count)
            if count > 0:
                step = ada_adjustment(total / count, self.target, self.batch_size, self.interval, self.kimg)
                self.p = max(self.p + step, 0.0)
            self.sign_sum, self.sign_count = 0.0, 0
        return self.p

    def state_dict(self) -> dict:
        return dict(p=self.p, sign_sum=self.sign_sum, sign_count=self.sign_count, num_batches=self.num_batches,
                    batch_size=self.batch_size, target=self.target, interval=self.interval, kimg=self.kimg)

    def load_state_dict(self, state: dict) -> None:
        self.p = float(state["p"])
        self.sign_sum = float(state.get("sign_sum", 0.0))
        self.sign_count = int(state.get("sign_count", 0))
        self.num_batches = int(state.get("num_batches", 0))
        for key in ("batch_size", "interval"):
            if key in state:
                setattr(self, key, int(state[key]))
        for key in ("target", "kimg"):
            if key in state:
                setattr(self, key, float(state[key]))


__all__ = ["AugmentPipe", "AUGPIPE_PRESETS", "AdaController", "ada_adjustment", "filter_bank"]
