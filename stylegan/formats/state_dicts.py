"""Foreign state dicts (rosinality's, MMGeneration's) mapped onto our networks' tensors.

A layout reader gives a table of ``Pair`` (our tensor's name, theirs, and how their shape wraps ours) and
the fixed resampling kernels the foreign network stores as buffers. ``ours_from_theirs`` checks the state
dict against both (every name present and none extra, every shape, every kernel's values) and returns our
tensors, float32, reshaped to ours. Messages name the layout and end with the reader's fix text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from stylegan.errors import StyleGANError
from stylegan.limits import MAX_LAYERS, quote, shorten


@dataclass(frozen=True)
class Pair:
    """One tensor: our name, the foreign name, and how the foreign shape wraps ours."""

    ours: str
    theirs: str
    wrap: str = "same"  # 'same', 'lead1' (a leading 1), 'lead2' (two leading 1s), 'rgb_bias' ([1, C, 1, 1])

    def their_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The foreign shape of a tensor whose shape is ``shape`` in our network."""
        return {"same": shape, "lead1": (1, *shape), "lead2": (1, 1, *shape),
                "rgb_bias": (1, *shape, 1, 1)}[self.wrap]


def first_few(names: list[str], count: int = 3) -> str:
    """The first ``count`` names, comma-separated, and how many more there are."""
    shown = ", ".join(names[:count])
    return shown + (f" and {len(names) - count} more" if len(names) > count else "")


def count_indexed(state: dict[str, Any], pattern: str, start: int = 0) -> int:
    """How many of ``pattern.format(i)`` for i = start, start + 1, … are keys, up to the first gap; counting
    stops past MAX_LAYERS (the layer counts a network may have)."""
    count = 0
    while count <= MAX_LAYERS and pattern.format(start + count) in state:
        count += 1
    return count


def ours_from_theirs(state: dict[str, Any], pairs: list[Pair], kernels: dict[str, torch.Tensor],
                     expected: dict[str, Any], what: str, network: str, *, layout: str,
                     fix: str) -> dict[str, torch.Tensor]:
    """Our tensors (float32, in our shapes) from a foreign state dict.

    ``expected`` maps each of our names to its shape; ``kernels`` are the foreign fixed buffers (name →
    the values they must hold, to 1e-6). ``what`` names the state dict and ``network`` the foreign class in
    messages, e.g. "g_ema in ckpt.pt does not match rosinality's Generator: missing …"; ``layout`` is the
    layout's owner ("rosinality", "MMGeneration") and ``fix`` ends every error.
    """
    wanted = {p.theirs: p.their_shape(tuple(expected[p.ours])) for p in pairs}
    wanted.update({name: tuple(k.shape) for name, k in kernels.items()})
    missing = [k for k in wanted if k not in state]
    extra = [shorten(str(k), 60) for k in state if k not in wanted]
    if missing or extra:
        parts = ([f"missing {first_few(missing)}"] if missing else []) + \
                ([f"unexpected {first_few(extra)}"] if extra else [])
        raise StyleGANError(f"{what} does not match {layout}'s {network}: {'; '.join(parts)}", fix)
    for name, shape in wanted.items():
        value = state[name]
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise StyleGANError(f"{what}: {quote(name)} is a {type(value).__name__}, not a float tensor", fix)
        if tuple(value.shape) != shape:
            raise StyleGANError(f"{what} does not match {layout}'s {network}: {name} has shape "
                                f"{list(value.shape)}, expected {list(shape)}", fix)
    for name, kernel in kernels.items():
        if not torch.allclose(state[name].float(), kernel, rtol=0, atol=1e-6):
            raise StyleGANError(f"{what} uses a blur kernel other than {layout}'s default ({name})",
                                f"only networks built with {layout}'s default blur_kernel are supported")
    return {p.ours: state[p.theirs].float().reshape(tuple(expected[p.ours])) for p in pairs}


__all__ = ["Pair", "count_indexed", "first_few", "ours_from_theirs"]
