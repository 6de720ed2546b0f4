"""What the TF readers share: the network record, the family names, and the conversion bookkeeping.

``tf_pickle`` reads a file into ``TFNetwork`` records and hands each to ``tf_stylegan1`` or
``tf_stylegan2``, which map it onto our modules; all three import this module and none imports another
reader. A TF network's ``static_kwargs`` and variables are read through ``Kwargs`` and ``Variables``,
which remember what was used, so that anything the conversion does not understand ends in a clear error
naming it, instead of being silently dropped. ``TensorMap`` fills our state dict from those variables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from stylegan.errors import StyleGANError
from stylegan.limits import quote, shorten
from stylegan.formats.rebuild import build_with_tensors

_VARIANT_FIX = "this network variant cannot be converted; only the official configurations are supported"
_DAMAGED = "the file is damaged, or was written by a modified version of the official code"
_REDOWNLOAD = "the file is damaged; download or copy it again"

# The families a TF snapshot can belong to, told apart by its generator's build functions.
STYLEGAN1 = "StyleGAN (v1)"
STYLEGAN2 = "StyleGAN2"
STYLEGAN2_ADA = "StyleGAN2-ADA"


@dataclass(frozen=True)
class TFNetwork:
    """One ``dnnlib.tflib.network.Network`` as plain data (its build source is dropped unread)."""

    name: str
    version: int
    build_func_name: str
    static_kwargs: dict[str, Any]
    components: dict[str, "TFNetwork"]
    variables: dict[str, np.ndarray]

    def all_variables(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Own variables and those of every component, named ``component/variable`` as in TF scopes."""
        out = {prefix + name: value for name, value in self.variables.items()}
        for name, component in self.components.items():
            out.update(component.all_variables(f"{prefix}{name}/"))
        return out

    def component(self, name: str, what: str) -> "TFNetwork":
        if name not in self.components:
            raise StyleGANError(f"{what} has no '{name}' sub-network (it has: "
                                f"{shorten(', '.join(self.components)) or 'none'})", _REDOWNLOAD)
        return self.components[name]


def _same(value: Any, allowed: Any) -> bool:
    """Equality that keeps booleans apart from numbers (True is not 1 here)."""
    if isinstance(value, bool) or isinstance(allowed, bool):
        return value is allowed
    return value == allowed


class Kwargs:
    """A TF network's static kwargs; ``finish()`` refuses any that were never read."""

    def __init__(self, static_kwargs: dict[str, Any], what: str):
        self.kwargs, self.what, self.used = dict(static_kwargs), what, set()

    def get(self, name: str, default: Any = None) -> Any:
        """The value (None when stored as None), or ``default`` when absent."""
        self.used.add(name)
        return self.kwargs.get(name, default)

    def get_or(self, name: str, default: Any) -> Any:
        """Like ``get``, but a stored None also gives ``default`` (TF's 'None = default')."""
        value = self.get(name, default)
        return default if value is None else value

    def require(self, name: str, allowed: Iterable[Any], default: Any) -> Any:
        """The value, which must be one of ``allowed``; anything else cannot be converted."""
        value = self.get(name, default)
        allowed = list(allowed)
        if not any(_same(value, a) for a in allowed):
            raise StyleGANError(f"{self.what} was built with {name}={quote(value)}, which this converter does not "
                                f"support (supported: {', '.join(repr(a) for a in allowed)})", _VARIANT_FIX)
        return value

    def ignore(self, *names: str) -> None:
        """Kwargs that change nothing about a trained network's outputs (training-only, graph options)."""
        self.used.update(names)

    def finish(self) -> None:
        unknown = sorted(set(self.kwargs) - self.used)
        if unknown:
            shown = ", ".join(f"{shorten(k, 60)}={quote(self.kwargs[k], 60)}" for k in unknown[:3])
            shown += f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            raise StyleGANError(f"{self.what} was built with unknown TensorFlow kwargs: {shown}", _VARIANT_FIX)


class Variables:
    """A TF network's variables by scoped name; ``finish()`` refuses any that were never used."""

    def __init__(self, variables: dict[str, np.ndarray], what: str):
        self.variables, self.what, self.used = dict(variables), what, set()

    def __contains__(self, name: str) -> bool:
        return name in self.variables

    def take(self, name: str) -> np.ndarray:
        """The variable as float32; a missing one is an error naming it."""
        if name not in self.variables:
            raise StyleGANError(f"{self.what} lacks the variable {shorten(name)}", _DAMAGED)
        self.used.add(name)
        return np.asarray(self.variables[name], dtype=np.float32)

    def ignore(self, pattern: str) -> None:
        """Variables (regex, full match) that a finished network does not use, e.g. older ToRGB layers."""
        self.used.update(name for name in self.variables if re.fullmatch(pattern, name))

    def finish(self) -> None:
        unused = sorted(set(self.variables) - self.used)
        if unused:
            shown = ", ".join(shorten(name, 80) for name in unused[:3])
            shown += f" and {len(unused) - 3} more" if len(unused) > 3 else ""
            raise StyleGANError(f"{self.what} has variables this network variant does not use: {shown}",
                                _VARIANT_FIX)


@dataclass
class TensorMap:
    """Our state dict under construction: each entry taken from one TF variable and converted."""

    variables: Variables
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    def kernel(self, ours: str, tf_name: str, flip: bool = False) -> None:
        """A conv kernel (see ``conv_to_torch``)."""
        self.tensors[ours] = conv_to_torch(self.variables.take(tf_name), flip=flip)

    def matrix(self, ours: str, tf_name: str) -> None:
        """A dense weight (see ``dense_to_torch``)."""
        self.tensors[ours] = dense_to_torch(self.variables.take(tf_name))

    def value(self, ours: str, tf_name: str, *, index: tuple[int, ...] = (), plus: float | None = None) -> None:
        """Any other variable as stored, or its entry ``index`` (leading axes dropped), plus ``plus`` for
        values TF offsets at run time."""
        stored = self.variables.take(tf_name)[index]
        self.tensors[ours] = to_tensor(stored if plus is None else stored + plus)

    def conv_layer(self, weight: str, bias: str | None, scope: str, flip: bool = False) -> None:
        """``scope/weight`` → ``weight``, and ``scope/bias`` → ``bias`` unless that is None."""
        self.kernel(weight, f"{scope}/weight", flip)
        if bias is not None:
            self.value(bias, f"{scope}/bias")

    def dense_layer(self, ours: str, scope: str) -> None:
        """``scope/weight`` and ``scope/bias`` → ``ours.weight`` and ``ours.bias``."""
        self.matrix(f"{ours}.weight", f"{scope}/weight")
        self.value(f"{ours}.bias", f"{scope}/bias")


def network_size(kw: Kwargs, default_resolution: int, default_channels: int) -> tuple[int, int, int]:
    """(c_dim, img_resolution, img_channels) from ``label_size``, ``resolution``, ``num_channels``."""
    c_dim = check_positive_int(kw.get_or("label_size", 0), "label_size", kw.what)
    resolution = check_resolution(kw.get_or("resolution", default_resolution), kw.what)
    channels = check_positive_int(kw.get_or("num_channels", default_channels), "num_channels", kw.what)
    return c_dim, resolution, channels


def latent_sizes(kw: Kwargs) -> tuple[int, int]:
    """(z_dim, w_dim) of a generator from ``latent_size`` and ``dlatent_size`` (both 512 by default)."""
    return (check_positive_int(kw.get_or("latent_size", 512), "latent_size", kw.what),
            check_positive_int(kw.get_or("dlatent_size", 512), "dlatent_size", kw.what))


def check_lod(variables: Variables, name: str) -> None:
    """Refuse a progressive-growing snapshot taken mid-training (``lod`` ≠ 0): only finished networks
    are a fixed-resolution network; earlier ones blend lower-resolution outputs."""
    if name not in variables:
        return
    lod = float(variables.take(name))
    if lod != 0:
        raise StyleGANError(f"{variables.what} is a progressive-growing snapshot at lod {lod:g} (its output is "
                            "still blended from lower resolutions), which is not supported",
                            "use a snapshot from the end of training (lod 0), e.g. the final network pickle")


def check_positive_int(value: Any, name: str, what: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise StyleGANError(f"{what} has {name}={quote(value)}, expected a non-negative integer", _DAMAGED)
    return int(value)


def check_resolution(value: Any, what: str) -> int:
    res = check_positive_int(value, "resolution", what)
    if res < 4 or res & (res - 1):
        raise StyleGANError(f"{what} has resolution={quote(value)}, expected a power of two >= 4", _DAMAGED)
    return res


def to_tensor(value: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(value, dtype=np.float32))  # a C-contiguous copy; 0-d stays 0-d


def conv_to_torch(weight: np.ndarray, flip: bool = False) -> torch.Tensor:
    """TF conv kernel ``[kh, kw, in, out]`` → ``[out, in, kh, kw]``, optionally flipped in both spatial axes."""
    if weight.ndim != 4:
        raise StyleGANError(f"a convolution kernel has shape {list(weight.shape)}, expected 4 dimensions", _DAMAGED)
    if flip:
        weight = weight[::-1, ::-1]
    return to_tensor(weight.transpose(3, 2, 0, 1))


def dense_to_torch(weight: np.ndarray) -> torch.Tensor:
    """TF dense weight ``[in, out]`` → ``[out, in]``."""
    if weight.ndim != 2:
        raise StyleGANError(f"a dense weight has shape {list(weight.shape)}, expected 2 dimensions", _DAMAGED)
    return to_tensor(weight.T)


def build_converted(class_name: str, init_kwargs: dict[str, Any], tensors: dict[str, torch.Tensor],
                    what: str) -> nn.Module:
    """Our ``class_name(**init_kwargs)`` holding ``tensors``: TF files store no resampling filters, so those
    keep the values the settings give them. Names and shapes must match exactly (checked before building)."""
    return build_with_tensors(class_name, init_kwargs, tensors, what,
                              derived=lambda name: name.endswith("resample_filter"))
