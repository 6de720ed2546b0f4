"""Bounds on what a file may ask of us, and the small readers that enforce them.

Every reader checks declared sizes against the bytes actually present and against these limits *before*
it allocates, so a tiny hostile file cannot exhaust memory or time. The limits sit well above every
real network and dataset (FFHQ-1024: z/w 512, 18 ws, 30 M parameters; ImageNet: 1.28 M labels) and each
error says which limit was hit.
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO, Callable

from stylegan.errors import StyleGANError

# Networks
MAX_LATENT_DIM = 4096  # z_dim, w_dim, embedding and mapping widths (real: 512)
MAX_CLASSES = 100_000  # c_dim (real: 10 for CIFAR-10, 1000 for ImageNet)
MAX_RESOLUTION = 8192  # img_resolution (real: up to 1024, a few 2048)
MAX_CHANNELS = 16_384  # any layer's channel count (real: 512, a few 1024)
MAX_LAYERS = 64  # mapping layers (real: 8) and other per-network layer counts
MAX_PARAMETERS = 2_000_000_000  # elements in one network (real: 30 M; 8 GB of float32)

# Files and their contents
MAX_JSON_BYTES = 64 * 2**20  # metadata, dataset.json (1.28 M labels take about 40 MB)
MAX_JSON_DEPTH = 64  # nesting of JSON and of pickled containers (real: under 10)
MAX_MEMBER_BYTES = 1 * 2**30  # one decompressed member of a ZIP, gzip or tar (real: MNIST 47 MB)
MAX_IMAGE_PIXELS = 2**28  # one decoded image (16384² — real datasets are at most 1024² or 2048²)
MAX_QUOTE = 120  # characters of file content quoted in an error line


def quote(value: Any, limit: int = MAX_QUOTE) -> str:
    """``repr(value)`` for an error line, cut to ``limit`` characters (file content can be megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bracket_depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting outside strings: checked before ``json.loads``, whose parser recurses."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def load_json(text: str | bytes, what: str, fix: str) -> Any:
    """Parse JSON from a file within the size and depth limits; any problem is one StyleGANError line."""
    if isinstance(text, bytes):
        if len(text) > MAX_JSON_BYTES:
            raise StyleGANError(f"{what} is {len(text)} bytes, over the {MAX_JSON_BYTES}-byte limit", fix)
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise StyleGANError(f"{what} is not UTF-8 text", fix) from None
    if len(text) > MAX_JSON_BYTES:
        raise StyleGANError(f"{what} is {len(text)} characters, over the {MAX_JSON_BYTES} limit", fix)
    if _bracket_depth(text) > MAX_JSON_DEPTH:
        raise StyleGANError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels", fix)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise StyleGANError(f"{what} is not valid JSON: {quote(str(e))}", fix) from None


def read_capped(stream: BinaryIO, limit: int, overflow: Callable[[], Exception], chunk: int = 2**20) -> bytes:
    """Read ``stream`` to its end, raising ``overflow()`` (before holding more than ``limit`` bytes) if it
    inflates past ``limit``.

    For decompressing streams (zipfile, gzip, tarfile members): the declared size in a header can lie,
    so the bytes are counted as they come.
    """
    parts, total = [], 0
    while True:
        block = stream.read(min(chunk, limit + 1 - total))
        if not block:
            return b"".join(parts)
        total += len(block)
        if total > limit:
            raise overflow()
        parts.append(block)

# What a command may be asked to render (image grids and grid videos)
MAX_GRID_CELLS = 16_384  # cells of one image grid or video grid (128x128; real grids: up to about 100x100)
MAX_WALK_VALUES = 2**25  # latent values a grid video's walks hold: cells x keyframes x (z_dim or num_ws x w_dim)
MAX_ERROR_LINE = 500  # characters of one printed `error:` line (readers quote much less: MAX_QUOTE)


# Downloads
MAX_DOWNLOAD_BYTES = 4 * 2**30  # one downloaded file, counted after any Content-Encoding (real: under 1.2 GB)


def shorten(text: str, limit: int = MAX_QUOTE) -> str:
    """``text`` on one line (whitespace collapsed), cut at a word boundary to at most ``limit`` characters."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + "…"
