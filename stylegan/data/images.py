"""Image files: which names count as images, decoding bytes to arrays, and channel normalisation.

Arrays here are uint8 ``[H, W, C]`` with C in {1, 3, 4} unless a docstring says otherwise.
"""

from __future__ import annotations

import io
import warnings
from functools import lru_cache

import numpy as np
import PIL.Image

from stylegan.limits import MAX_IMAGE_PIXELS

try:  # fast PNG decoding when the optional package is installed
    import pyspng
except ImportError:  # pragma: no cover - depends on the environment
    pyspng = None

_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@lru_cache(maxsize=1)
def image_extensions() -> frozenset[str]:
    """Lower-case file extensions (with the dot) that Pillow can open: the official tools' selection."""
    PIL.Image.init()
    return frozenset(ext.lower() for ext, fmt in PIL.Image.EXTENSION.items() if fmt in PIL.Image.OPEN)


def is_image_name(name: str) -> bool:
    """True for a path (``/`` separated) that names an image file and is not macOS metadata junk."""
    base = name.rsplit("/", 1)[-1]
    if base.startswith("._") or name.startswith("__MACOSX/") or "/__MACOSX/" in name:
        return False
    dot = base.rfind(".")
    return dot > 0 and base[dot:].lower() in image_extensions()


class ImageTooLarge(ValueError):
    """An image whose size, read from its header, is over the pixel limit; nothing was decoded."""


def pixel_limit() -> int:
    """The most pixels one image may have: ``limits.MAX_IMAGE_PIXELS``, or Pillow's own decompression-bomb
    limit when that is lower (Pillow refuses above twice its ``MAX_IMAGE_PIXELS``)."""
    pil = PIL.Image.MAX_IMAGE_PIXELS
    return MAX_IMAGE_PIXELS if pil is None else min(MAX_IMAGE_PIXELS, 2 * int(pil))


def check_pixels(width: int, height: int) -> None:
    """ImageTooLarge unless a ``width`` x ``height`` image is within :func:`pixel_limit`."""
    if width * height > pixel_limit():
        raise ImageTooLarge(f"{width}x{height} pixels, over the {pixel_limit()}-pixel limit for one image")


def open_image(data: bytes) -> PIL.Image.Image:
    """Decode encoded image bytes fully (so truncated files fail here, not later).

    The size in the header is checked against :func:`pixel_limit` before the pixels are decoded
    (ImageTooLarge), so a small file cannot decode into gigabytes.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)  # the size is checked below
        try:
            image = PIL.Image.open(io.BytesIO(data))
        except PIL.Image.DecompressionBombError:
            raise ImageTooLarge(f"over the {pixel_limit()}-pixel limit for one image") from None
        check_pixels(*image.size)
        image.load()
    return image


def has_alpha(image: PIL.Image.Image) -> bool:
    return image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info)


def natural_channels(image: PIL.Image.Image) -> int:
    """1 for grayscale, 3 for colour: the channel count the image has without its alpha."""
    if image.mode in _GRAY_MODES:
        return 1
    if image.mode == "P":
        palette = np.asarray(image.convert("RGB"))
        return 1 if _is_gray(palette) else 3
    return 3


def _is_gray(rgb: np.ndarray) -> bool:
    return bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]))


def _high_depth_to_l(image: PIL.Image.Image) -> PIL.Image.Image:
    """16-bit ('I;16', 'I') and float ('F') grayscale → 8-bit 'L' by keeping the high byte / clipping."""
    arr = np.asarray(image)
    if image.mode == "F":
        arr = np.clip(np.rint(arr), 0, 255)
    else:
        arr = np.clip(arr.astype(np.int64), 0, 65535) >> 8
    return PIL.Image.fromarray(arr.astype(np.uint8), "L")


def to_array(image: PIL.Image.Image, channels: int | None = None) -> tuple[np.ndarray, bool]:
    """A decoded image → (uint8 ``[H, W, C]``, whether an alpha channel was dropped).

    ``channels`` None keeps grayscale as 1 channel and colour as 3 (dropping alpha); 1, 3 or 4 forces
    'L', 'RGB' or 'RGBA'.
    """
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = _high_depth_to_l(image)
    alpha = has_alpha(image)
    if channels is None:
        channels = natural_channels(image)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    if image.mode != mode:
        image = image.convert(mode)
    arr = np.asarray(image, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, np.newaxis]
    return arr, alpha and channels != 4


def array_to_pil(arr: np.ndarray) -> PIL.Image.Image:
    """uint8 ``[H, W, C]`` (C in 1, 3, 4) → PIL image."""
    if arr.shape[2] == 1:
        return PIL.Image.fromarray(arr[:, :, 0], "L")
    return PIL.Image.fromarray(arr, {3: "RGB", 4: "RGBA"}[arr.shape[2]])


def encode_png(arr: np.ndarray) -> bytes:
    """uint8 ``[H, W, C]`` → PNG bytes stored without compression (fast to decode, like the official tool)."""
    buf = io.BytesIO()
    array_to_pil(arr).save(buf, format="png", compress_level=0, optimize=False)
    return buf.getvalue()


def _spng_can_decode(data: bytes) -> bool:
    """pyspng handles 8-bit non-palette PNGs exactly; everything else goes through Pillow."""
    if pyspng is None or len(data) < 26 or not data.startswith(_PNG_SIGNATURE):
        return False
    bit_depth, color_type = data[24], data[25]
    return bit_depth == 8 and color_type in (0, 2, 4, 6)


def decode_hwc(data: bytes) -> np.ndarray:
    """Encoded image bytes → uint8 ``[H, W, C]`` as stored (grayscale 1, RGB 3, RGBA 4, gray+alpha 2).

    Palette images become RGB (RGBA with transparency); 16-bit images keep their high byte.
    """
    if _spng_can_decode(data):
        check_pixels(int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big"))  # IHDR
        arr = pyspng.load(data)
    else:
        image = open_image(data)
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
            image = _high_depth_to_l(image)
        elif image.mode == "P":
            image = image.convert("RGBA" if has_alpha(image) else "RGB")
        elif image.mode == "1":
            image = image.convert("L")
        elif image.mode not in ("L", "LA", "RGB", "RGBA"):
            image = image.convert("RGB")
        arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, np.newaxis]
    return np.ascontiguousarray(arr, dtype=np.uint8)


def decode_error_text(e: BaseException, limit: int = 80) -> str:
    """A short one-line reason for a failed decode, for error messages."""
    if isinstance(e, PIL.UnidentifiedImageError):
        return "not a readable image"
    if isinstance(e, MemoryError):
        return "out of memory while decoding it"
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
