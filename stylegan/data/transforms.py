"""Crop and resize for the dataset tool, with the official tool's rules.

- no ``--transform``: resize to ``--resolution`` when given (aspect ratio is not kept), else unchanged;
- ``center-crop``: cut the largest centred square, then resize it to ``--resolution``;
- ``center-crop-wide``: for a W×H target (W >= H), keep the centred band of ``round(W * h / w)`` input
  rows (rounded half to even), resize that band to W×H and put it in the middle of a black W×W
  canvas. Images narrower than W, or whose band would be shorter than H, are left out.

Arrays are uint8 ``[H, W, C]`` with C in {1, 3, 4}.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import numpy as np
import PIL.Image

from stylegan.data.images import array_to_pil
from stylegan.errors import StyleGANError, setting
from stylegan.limits import quote

TRANSFORMS = ("center-crop", "center-crop-wide")
RESIZE_FILTERS = {"box": PIL.Image.Resampling.BOX, "lanczos": PIL.Image.Resampling.LANCZOS}
MIN_RESOLUTION = 4  # the smallest StyleGAN2 block
# How messages name the settings: the argument of ``convert_dataset`` and the dataset command's flag.
RESOLUTION = setting("resolution")
TRANSFORM = setting("transform")


def is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def parse_resolution(text: str) -> tuple[int, int]:
    """``'512x384'`` → (512, 384); a single number ``'64'`` means 64x64."""
    m = re.fullmatch(r"\s*(\d{1,9})\s*(?:[xX×]\s*(\d{1,9}))?\s*", text)  # 9 digits: far above any real size
    if m is None or int(m.group(1)) == 0 or (m.group(2) is not None and int(m.group(2)) == 0):
        raise StyleGANError(f"{RESOLUTION} {quote(text)} is not WIDTHxHEIGHT", "write it like 256x256")
    w = int(m.group(1))
    return w, int(m.group(2)) if m.group(2) is not None else w


def check_square_power_of_two(w: int, h: int, subject: str, fix: str) -> None:
    """Raise StyleGANError ``"<subject> is WxH, which is not square"`` (or not a power of two >= 4)."""
    if w != h:
        raise StyleGANError(f"{subject} is {w}x{h}, which is not square; StyleGAN trains on square images", fix)
    if not is_power_of_two(w) or w < MIN_RESOLUTION:
        raise StyleGANError(f"{subject} is {w}x{h}; StyleGAN needs a power-of-two side of at least "
                            f"{MIN_RESOLUTION} (such as 32, 64, 256, 1024)", fix)


def _resize(arr: np.ndarray, width: int, height: int, resample: int) -> np.ndarray:
    if arr.shape[1] == width and arr.shape[0] == height:
        return arr
    out = np.asarray(array_to_pil(arr).resize((width, height), resample))
    return out[:, :, np.newaxis] if out.ndim == 2 else out


def middle(length: int, keep: int) -> slice:
    """The centred ``keep`` of ``length`` positions; an odd surplus leaves one more at the end than at the start."""
    start = (length - keep) // 2
    return slice(start, start + keep)


def wide_band_rows(height: int, width: int, canvas_width: int) -> int:
    """How many input rows center-crop-wide keeps: the image's height once scaled to ``canvas_width``
    wide, rounded half to even (the official tool's rule, which counts them in input rows)."""
    return round(canvas_width * height / width)


def square_crop(arr: np.ndarray) -> np.ndarray:
    """The largest centred square of an HWC image."""
    side = min(arr.shape[:2])
    return np.ascontiguousarray(arr[middle(arr.shape[0], side), middle(arr.shape[1], side)])


def letterbox(band: np.ndarray, canvas_side: int) -> np.ndarray:
    """``band`` (HWC, ``canvas_side`` wide) centred vertically on a black square canvas."""
    spare = canvas_side - band.shape[0]
    above = spare // 2
    return np.pad(band, ((above, spare - above), (0, 0), (0, 0)))


@dataclass(frozen=True)
class Transform:
    """One crop/resize rule; calling it maps an image to the output image, or to None when it is left out."""

    kind: Optional[str] = None            # None, 'center-crop' or 'center-crop-wide' (``transform`` in messages)
    resolution: Optional[tuple[int, int]] = None  # (width, height) of --resolution
    resize_filter: str = "lanczos"

    def __post_init__(self) -> None:
        if self.kind not in (None, *TRANSFORMS):
            raise StyleGANError(f"unknown {TRANSFORM} {self.kind!r}", f"use one of {', '.join(TRANSFORMS)}")
        if self.resize_filter not in RESIZE_FILTERS:
            raise StyleGANError(f"unknown {setting('resize_filter')} {self.resize_filter!r}",
                                f"use one of {', '.join(RESIZE_FILTERS)}")
        if self.kind is not None and self.resolution is None:
            raise StyleGANError(f"{TRANSFORM} {self.kind} needs an output size",
                                f"also give {RESOLUTION}, e.g. 256x256")
        if self.resolution is None:
            return
        w, h = self.resolution
        if self.kind == "center-crop-wide":
            if h > w:
                raise StyleGANError(f"{RESOLUTION} {w}x{h} is taller than wide; center-crop-wide makes wide images",
                                    "give WxH with W >= H, e.g. 512x384")
            check_square_power_of_two(w, w, "the center-crop-wide canvas", "give a power-of-two width, e.g. 512x384")
        else:
            fix = (f"set {TRANSFORM} to center-crop-wide for a wide W x H inside a square canvas, or give a square "
                   f"{RESOLUTION}" if w != h else f"give a power-of-two {RESOLUTION} such as 64x64 or 256x256")
            check_square_power_of_two(w, h, RESOLUTION, fix)

    @property
    def output_size(self) -> Optional[int]:
        """The side of the square output when known in advance (from --resolution), else None."""
        return None if self.resolution is None else self.resolution[0]

    def __call__(self, arr: np.ndarray) -> Optional[np.ndarray]:
        resample = RESIZE_FILTERS[self.resize_filter]
        if self.kind is None:
            if self.resolution is None:
                return arr
            return _resize(arr, *self.resolution, resample)
        if self.kind == "center-crop":
            return _resize(square_crop(arr), *self.resolution, resample)
        return self._wide(arr, resample)

    def _wide(self, arr: np.ndarray, resample: int) -> Optional[np.ndarray]:
        """center-crop-wide: the middle band of rows resized to W×H, letterboxed on W×W; None when the
        image is narrower than W or its band shorter than H."""
        canvas_side, band_height = self.resolution
        rows = wide_band_rows(arr.shape[0], arr.shape[1], canvas_side)
        if arr.shape[1] < canvas_side or rows < band_height:
            return None
        band = np.ascontiguousarray(arr[middle(arr.shape[0], rows)])
        return letterbox(_resize(band, canvas_side, band_height, resample), canvas_side)

    def describe(self) -> str:
        if self.resolution is None:
            return "no resize"
        size = f"{self.resolution[0]}x{self.resolution[1]}"
        return f"{self.kind or 'resize'} to {size} ({self.resize_filter})"
