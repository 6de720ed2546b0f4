"""TensorFlow network pickles: StyleGAN (v1), StyleGAN2 and StyleGAN2-ADA (TF), read without TensorFlow.

Such a file is a tuple ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network`` states: ``version``, ``name``,
``static_kwargs`` (the build function's keyword arguments), ``components`` (sub-networks, e.g. mapping
and synthesis), ``build_module_src`` (the Python source that TF's loader would execute — never run or
even kept here), ``build_func_name`` and ``variables`` ((name, numpy value) pairs). We read it with the
restricted unpickler into ``TFNetwork`` records, tell the family from the build functions, and rebuild
our networks from converted variables (``tf_stylegan2``, ``tf_stylegan1``). This module is the only one
that knows both converters; they know only ``tf_common``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
from torch import nn

from stylegan.errors import StyleGANError
from stylegan.formats import tf_stylegan1, tf_stylegan2
from stylegan.formats.records import plain_data
from stylegan.formats.tf_common import STYLEGAN1, STYLEGAN2, STYLEGAN2_ADA, TFNetwork
from stylegan.formats.unpickler import TFNetworkStub, load_pickle_file, restricted_load_tf
from stylegan.limits import quote, shorten

_DAMAGED = "the file is damaged; download or copy it again"
_SUPPORTED = ("supported: StyleGAN (v1) G_style/D_basic, StyleGAN2 G_main with G_synthesis_stylegan2 and "
              "D_stylegan2, StyleGAN2-ADA (TF) G_main/D_main")


def format_name(family: str) -> str:
    """'StyleGAN2 TensorFlow pickle' and the like: what ``load_network`` reports as the format."""
    return f"{family} TensorFlow pickle"


MAX_TF_NETWORKS = 64  # networks and sub-networks in one TF pickle (real: 9, i.e. G, D, Gs and their components)


def _network_from_stub(stub: Any, what: str, seen: list[int] | None = None, depth: int = 0) -> TFNetwork:
    """``stub``'s state as a TFNetwork record; ``seen`` counts the networks read so far in this file, so that
    components shared many times over (a tree far larger than the file) are refused."""
    seen = [0] if seen is None else seen
    seen[0] += 1
    if seen[0] > MAX_TF_NETWORKS:
        raise StyleGANError(f"{what}: the file holds more than {MAX_TF_NETWORKS} networks and components "
                            "(MAX_TF_NETWORKS)", _DAMAGED)
    if not isinstance(stub, TFNetworkStub):
        raise StyleGANError(f"{what} is a {type(stub).__name__}, not a TensorFlow network", _DAMAGED)
    state = stub.state
    if state is None or depth > 4:
        raise StyleGANError(f"{what} is a TensorFlow network without a readable state", _DAMAGED)

    def field(key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        value = state.get(key, default)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
            raise StyleGANError(f"{what} is malformed: its '{key}' is a {type(value).__name__}", _DAMAGED)
        return value

    variables: dict[str, np.ndarray] = {}
    for item in field("variables", (list, tuple)):
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)):
            raise StyleGANError(f"{what} is malformed: a variable entry is not a (name, value) pair", _DAMAGED)
        name, value = item
        variables[name] = _variable_value(value, f"{what} is malformed: variable {quote(name)}")
    # build_module_src (state['build_module_src']) is deliberately never looked at beyond this point.
    components = {}
    for key, value in field("components", dict, {}).items():
        if not isinstance(key, str):
            raise StyleGANError(f"{what} is malformed: a component is named by a {type(key).__name__}", _DAMAGED)
        components[key] = _network_from_stub(value, f"{what}/{quote(key)}", seen, depth + 1)
    return TFNetwork(name=field("name", str), version=field("version", int),
                     build_func_name=field("build_func_name", str),
                     static_kwargs=plain_data(field("static_kwargs", dict, {}), f"{what}'s static_kwargs"),
                     components=components, variables=variables)


def _variable_value(value: Any, what: str) -> np.ndarray:
    """A variable's value as a numeric array (numpy values arrive built from bytes the file holds)."""
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in "fiub":
        return np.asarray(value)
    if isinstance(value, float) or isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**64:
        return np.asarray(value, dtype=np.float32)
    raise StyleGANError(f"{what} is a {type(value).__name__}", _DAMAGED)


def read_tf_pickle(path: Path, source: str) -> dict[str, TFNetwork]:
    """Restricted-unpickle a TF pickle: ``{'G': ..., 'D': ..., 'G_ema': ...}`` as ``TFNetwork`` records.

    A pickle holding a single network (e.g. ``Gs`` alone) gives ``{'G_ema': ...}``.
    """
    obj = load_pickle_file(path, source, restricted_load_tf)
    if isinstance(obj, TFNetworkStub):
        return {"G_ema": _network_from_stub(obj, f"the network in {source}")}
    if isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(n, TFNetworkStub) for n in obj):
        seen = [0]
        return {key: _network_from_stub(net, f"{key} in {source}", seen) for key, net in zip(("G", "D", "G_ema"), obj)}
    raise StyleGANError(f"{source} is a TensorFlow pickle but not a (G, D, Gs) network snapshot: it holds a "
                        f"{type(obj).__name__}" + (f" of {len(obj)}" if isinstance(obj, tuple) else ""),
                        "pass a snapshot written by the official StyleGAN/StyleGAN2 TensorFlow code")


def generator_family(G: TFNetwork, what: str) -> str:
    """STYLEGAN1, STYLEGAN2 or STYLEGAN2_ADA from the generator's build functions; errors otherwise."""
    synthesis = G.components.get("synthesis")
    synthesis_func = synthesis.build_func_name if synthesis is not None else None
    if G.build_func_name == "G_style" and synthesis_func == "G_synthesis":
        return STYLEGAN1
    if G.build_func_name == "G_main" and synthesis_func == "G_synthesis_stylegan2":
        return STYLEGAN2
    if G.build_func_name == "G_main" and synthesis_func == "G_synthesis":
        return STYLEGAN2_ADA
    raise StyleGANError(f"{what} is an unsupported TensorFlow network: {shorten(G.build_func_name)}"
                        + (f" with {shorten(synthesis_func)}" if synthesis_func else ""), _SUPPORTED)


def snapshot_family(entries: dict[str, TFNetwork], source: str) -> str:
    """The family of a TF snapshot, from its G_ema (else G)."""
    key = "G_ema" if "G_ema" in entries else "G"
    if key not in entries:
        raise StyleGANError(f"{source} holds no generator", "pass a (G, D, Gs) network snapshot")
    return generator_family(entries[key], f"{key} in {source}")


def describe_tf_pickle(path: Path, source: str) -> str:
    """The format name of a TF pickle (e.g. 'StyleGAN2 TensorFlow pickle'), read without rebuilding."""
    return format_name(snapshot_family(read_tf_pickle(path, source), source))


def networks_from_tf_pickle(entries: dict[str, TFNetwork], source: str) -> dict[str, nn.Module]:
    """Our G / D / G_ema rebuilt from ``read_tf_pickle``'s records (all of one family)."""
    family = snapshot_family(entries, source)
    net: dict[str, nn.Module] = {}
    for key, tf_net in entries.items():
        what = f"{key} in {source}"
        try:
            net[key] = _convert(key, tf_net, family, what)
        except (IndexError, ValueError, TypeError, KeyError, OverflowError) as e:  # malformed values deep inside
            raise StyleGANError(f"cannot convert {what}: a variable or kwarg has an unexpected form "
                                f"({shorten(str(e))})", _DAMAGED) from None
    return net


Converter = Callable[[TFNetwork, str, str], nn.Module]  # (record, family, what) -> our module

# (family, 'G' or 'D') -> the converter that maps such a record onto our modules.
_CONVERTERS: dict[tuple[str, str], Converter] = {
    (STYLEGAN1, "G"): lambda tf_net, family, what: tf_stylegan1.convert_generator(tf_net, what),
    (STYLEGAN1, "D"): lambda tf_net, family, what: tf_stylegan1.convert_discriminator(tf_net, what),
    **{(family, "G"): tf_stylegan2.convert_generator for family in (STYLEGAN2, STYLEGAN2_ADA)},
    **{(family, "D"): tf_stylegan2.convert_discriminator for family in (STYLEGAN2, STYLEGAN2_ADA)},
}


def _convert(key: str, tf_net: TFNetwork, family: str, what: str) -> nn.Module:
    role = "D" if key == "D" else "G"
    if role == "G" and generator_family(tf_net, what) != family:
        raise StyleGANError(f"{what} is a {generator_family(tf_net, what)} network, the rest of the file {family}",
                            _DAMAGED)
    return _CONVERTERS[family, role](tf_net, family, what)
