"""Query strings → checked render requests. Every bad value is a StyleGANError (HTTP 400, one line).

A request's latent is a seed position (fractional positions blend neighbouring seeds) or ``w``, the id of a
w uploaded or projected earlier; ``mix_seed``/``mix_w`` with ``mix_layers`` swap in a second latent's styles.
Numbers are read by small regular expressions, never by anything that accepts more than digits and a point.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping

from stylegan.errors import StyleGANError
from stylegan.explore.generate import parse_translate
from stylegan.explore.seeds import MAX_SEED
from stylegan.explore.style_mix import StyleSpec, parse_style_spec
from stylegan.networks.layers import NOISE_MODES

RENDER_PARAMS = ("net", "seed", "w", "psi", "cutoff", "class", "noise", "noise_seed", "mix_seed", "mix_w",
                 "mix_layers", "translate", "rotate", "layer", "channel", "cid", "seq")
MAX_VALUE_CHARS = 200  # longer than any sensible value (a style list of every index of 18 ws is 4 chars)
MAX_CUTOFF = 1024  # more ws than any network has: a larger cutoff means "all", as in generate
_INT = re.compile(r"\d{1,12}")
_FLOAT = re.compile(r"-?(\d{1,12}(\.\d{0,12})?|\.\d{1,12})")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Latent:
    """One latent: a seed position, or the id of a stored w."""

    seed: float | None = None
    w_id: str | None = None


@dataclass(frozen=True)
class RenderRequest:
    """What one frame is made of; see the README's API table for each field's query parameter."""

    net: int = 0
    latent: Latent = Latent(seed=0.0)
    psi: float = 1.0
    cutoff: int | None = None
    class_idx: int | None = None
    noise: str = "const"
    noise_seed: int = 0
    mix: Latent | None = None
    mix_layers: StyleSpec | None = None
    translate: tuple[float, float] | None = None
    rotate: float | None = None
    layer: str | None = None
    channel: int | None = None  # None: the first three channels as RGB
    client: str | None = None  # page id and sequence number, for dropping stale renders
    seq: int | None = None


def _bad(name: str, value: str, fix: str) -> StyleGANError:
    shown = value if len(value) <= 40 else value[:40] + "…"
    return StyleGANError(f"bad value {shown!r} for {name}", fix)


def parse_int(name: str, value: str, maximum: int) -> int:
    """A non-negative integer of at most ``maximum``."""
    if not _INT.fullmatch(value) or int(value) > maximum:
        raise _bad(name, value, f"give a whole number from 0 to {maximum}")
    return int(value)


def parse_float(name: str, value: str, low: float, high: float) -> float:
    """A decimal number in ``[low, high]`` (no exponents, no nan/inf)."""
    if not _FLOAT.fullmatch(value) or not low <= float(value) <= high:
        raise _bad(name, value, f"give a number from {low:g} to {high:g}")
    return float(value)


def parse_id(name: str, value: str) -> str:
    if not _ID.fullmatch(value):
        raise _bad(name, value, "give an id returned by POST /api/w or a finished projection")
    return value


def _latent(query: Mapping[str, str], seed_key: str, w_key: str) -> Latent | None:
    if seed_key in query and w_key in query:
        raise StyleGANError(f"both {seed_key} and {w_key} were given", f"give one of {seed_key} and {w_key}")
    if w_key in query:
        return Latent(w_id=parse_id(w_key, query[w_key]))
    if seed_key in query:
        return Latent(seed=parse_float(seed_key, query[seed_key], 0, MAX_SEED))
    return None


def parse_render_request(query: Mapping[str, str], allowed: tuple[str, ...] = RENDER_PARAMS) -> RenderRequest:
    """Check a query's parameters and values; StyleGANError names the first problem."""
    for key, value in query.items():
        if key not in allowed:
            shown = key if len(key) <= 40 else key[:40] + "…"
            raise StyleGANError(f"unknown parameter {shown!r}", f"use only: {', '.join(allowed)}")
        if len(value) > MAX_VALUE_CHARS:
            raise StyleGANError(f"the value of {key} is over {MAX_VALUE_CHARS} characters", "give a shorter value")
    latent = _latent(query, "seed", "w") or Latent(seed=0.0)
    mix = _latent(query, "mix_seed", "mix_w")
    if latent.w_id is not None and (mix is None or mix.seed is None):
        given = [k for k in ("psi", "cutoff", "class") if k in query]
        if given:  # with a mix seed they apply to that seed
            raise StyleGANError(f"{given[0]} does not apply to a stored w",
                                "a projected or uploaded w already includes truncation and class; leave it out")
    layers = parse_style_spec(query["mix_layers"]) if query.get("mix_layers") else None
    if (mix is None) != (layers is None):
        raise StyleGANError("style mixing needs both a second latent and layers",
                            "give mix_seed (or mix_w) together with mix_layers, e.g. mix_seed=5&mix_layers=0-3")
    noise = query.get("noise", "const")
    if noise not in NOISE_MODES:
        raise _bad("noise", noise, f"use one of {', '.join(NOISE_MODES)}")
    translate = None
    if "translate" in query:
        try:
            translate = parse_translate(query["translate"])
        except StyleGANError:
            raise _bad("translate", query["translate"], "give two numbers x,y, e.g. translate=0.2,-0.1") from None
        if not all(abs(v) <= 1e6 for v in translate):
            raise _bad("translate", query["translate"], "give shifts within ±1e6")
    channel = query.get("channel", "rgb")
    client = query.get("cid")
    return RenderRequest(
        net=parse_int("net", query.get("net", "0"), 1000),
        latent=latent,
        psi=parse_float("psi", query.get("psi", "1"), -100, 100),
        cutoff=parse_int("cutoff", query["cutoff"], MAX_CUTOFF) if "cutoff" in query else None,
        class_idx=parse_int("class", query["class"], 1_000_000) if "class" in query else None,
        noise=noise,
        noise_seed=parse_int("noise_seed", query.get("noise_seed", "0"), MAX_SEED),
        mix=mix,
        mix_layers=layers,
        translate=translate,
        rotate=parse_float("rotate", query["rotate"], -360_000, 360_000) if "rotate" in query else None,
        layer=query.get("layer") or None,
        channel=None if channel == "rgb" else parse_int("channel", channel, 100_000),
        client=parse_id("cid", client) if client is not None else None,
        seq=parse_int("seq", query["seq"], 2**53) if "seq" in query else None,
    )


def is_whole(value: float) -> bool:
    """True for a seed position that names one seed (no blending)."""
    return math.isfinite(value) and value == math.floor(value)
