"""Seed and index lists, and the seed → latent mapping shared with the official tools."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import torch

from stylegan.errors import StyleGANError
from stylegan.limits import quote

INDEX_LIST_FORM = "comma-separated non-negative integers and inclusive ascending ranges, e.g. 1,2,5-100,999"
MAX_SEED = 2**32 - 1  # numpy's RandomState accepts 32-bit seeds only
MAX_LIST_LENGTH = 1_000_000  # guards against a typo like 0-4000000000 filling memory

_NUMBER = re.compile(r"\d+")
_MAX_DIGITS = 18  # far above any seed (< 2³²) or index, and below what int() refuses to read
_RANGE = re.compile(r"(\d+)-(\d+)")


def parse_index_spans(text: str) -> list[tuple[int, int]]:
    """Parse ``"1,2,5-100"`` into inclusive ``(first, last)`` spans without expanding them."""
    if not text.strip():
        raise StyleGANError("empty index list", f"give {INDEX_LIST_FORM}")
    spans = []
    for part in text.split(","):
        part = part.strip()
        if any(len(digits) > _MAX_DIGITS for digits in _NUMBER.findall(part)):  # before int() reads them
            raise StyleGANError(f"entry {quote(part)} has a number of more than {_MAX_DIGITS} digits",
                                f"give {INDEX_LIST_FORM}")
        if _NUMBER.fullmatch(part):
            spans.append((int(part), int(part)))
            continue
        m = _RANGE.fullmatch(part)
        if m is None:
            if not part:
                raise StyleGANError(f"empty entry in list {text!r}", f"give {INDEX_LIST_FORM}")
            if part.startswith("-"):
                raise StyleGANError(f"negative entry {part!r}", f"give {INDEX_LIST_FORM}")
            raise StyleGANError(f"bad list entry {part!r}", f"give {INDEX_LIST_FORM}")
        first, last = int(m.group(1)), int(m.group(2))
        if first > last:
            raise StyleGANError(f"descending range {part!r}", f"write it as {last}-{first}")
        spans.append((first, last))
    return spans


def parse_index_list(text: str, max_value: int | None = None) -> list[int]:
    """Parse ``"1,2,5-100,999"`` into ``[1, 2, 5, 6, ..., 100, 999]`` (order and repeats kept).

    Ranges are inclusive and must ascend; negatives, junk and an empty string raise StyleGANError.
    ``max_value`` bounds every entry (checked before ranges are expanded).
    """
    spans = parse_index_spans(text)
    if max_value is not None:
        for first, last in spans:
            if last > max_value:
                raise StyleGANError(f"index {last} is too large", f"entries must be at most {max_value}")
    if sum(last - first + 1 for first, last in spans) > MAX_LIST_LENGTH:
        raise StyleGANError("index list is too long", f"give at most {MAX_LIST_LENGTH} entries")
    return [i for first, last in spans for i in range(first, last + 1)]


def parse_seeds(text: str) -> list[int]:
    """Parse a seed list (same form as :func:`parse_index_list`); seeds must be below 2**32."""
    return parse_index_list(text, max_value=MAX_SEED)


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """The official tools' latent for a seed: ``RandomState(seed).randn(1, z_dim)``, float64 ``[1, z_dim]``."""
    if not 0 <= seed <= MAX_SEED:
        raise StyleGANError(f"seed {seed} is out of range", f"seeds must be between 0 and {MAX_SEED}")
    return np.random.RandomState(seed).randn(1, z_dim)


def seed_latents(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    """Latents ``[len(seeds), z_dim]`` float32, row i being the official tools' z for ``seeds[i]``."""
    # G casts z to float32 anyway; doing it here keeps float64 off devices that lack it (MPS).
    z = np.concatenate([z_from_seed(seed, z_dim) for seed in seeds]) if seeds else np.zeros([0, z_dim])
    return torch.from_numpy(z).to(torch.float32)
