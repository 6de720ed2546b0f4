"""Checking a network's constructor arguments before anything is allocated.

Files (official pickles, TensorFlow pickles, our safetensors metadata) name a class and the keyword
arguments to build it with, and a few bytes can ask for a network of any size. Two checks run first:

1. :func:`check_init_kwargs`: every argument we know is of the right type and within the limits of
   ``stylegan.limits`` (sizes are ints, not bools, floats or strings; activations, architectures and filters
   are ones we have), the whole structure is small and shallow;
2. :func:`planned_state`: the module is built in a shape-only mode (its tensors live on the ``meta``
   device, nothing is allocated) to count its values exactly and to list the shapes of its state.

Each refusal is one :class:`StyleGANError` naming the argument and the limit.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from stylegan import limits
from stylegan.errors import StyleGANError
from stylegan.networks.stylegan1 import ACTIVATIONS as V1_ACTIVATIONS
from stylegan.networks.stylegan2 import ARCHITECTURES
from stylegan.ops import ACTIVATIONS

_FIX = "the file is damaged, or its settings were edited to ask for more than any real network needs"
V1_CLASSES = ("StyleGAN1Generator", "StyleGAN1Discriminator")
NESTED_KWARGS = ("mapping_kwargs", "synthesis_kwargs", "block_kwargs", "epilogue_kwargs", "layer_kwargs")
MAX_FILTER_TAPS = 64  # resample/blur filter taps per axis (real: 4, or 12 for stylegan3's filters)
MAX_KWARG_ITEMS = 10_000  # values in one network's settings, nested ones included (real: under 100)
MAX_FREEZE_LAYERS = 1_000_000  # freeze_layers beyond D's layer count just freezes everything

# name: (lowest, highest, the limit's name in stylegan.limits or here, None allowed)
_SIZES: dict[str, tuple[int, int, str, bool]] = {
    "z_dim": (0, limits.MAX_LATENT_DIM, "MAX_LATENT_DIM", False),
    "w_dim": (1, limits.MAX_LATENT_DIM, "MAX_LATENT_DIM", False),
    "c_dim": (0, limits.MAX_CLASSES, "MAX_CLASSES", False),
    "img_channels": (1, limits.MAX_CHANNELS, "MAX_CHANNELS", False),
    "channel_max": (1, limits.MAX_CHANNELS, "MAX_CHANNELS", False),
    "fmap_max": (1, limits.MAX_CHANNELS, "MAX_CHANNELS", False),
    # channels at resolution r are channel_base / r (capped at channel_max): at most MAX_CHANNELS at 4×4
    "channel_base": (1, 4 * limits.MAX_CHANNELS * limits.MAX_RESOLUTION, "4·MAX_CHANNELS·MAX_RESOLUTION", False),
    "fmap_base": (1, 4 * limits.MAX_CHANNELS * limits.MAX_RESOLUTION, "4·MAX_CHANNELS·MAX_RESOLUTION", False),
    "num_layers": (0, limits.MAX_LAYERS, "MAX_LAYERS", False),
    "num_ws": (1, limits.MAX_LAYERS, "MAX_LAYERS", True),
    "num_fp16_res": (0, limits.MAX_LAYERS, "MAX_LAYERS", False),
    "embed_features": (1, limits.MAX_LATENT_DIM, "MAX_LATENT_DIM", True),
    "layer_features": (1, limits.MAX_LATENT_DIM, "MAX_LATENT_DIM", True),
    "cmap_dim": (0, limits.MAX_LATENT_DIM, "MAX_LATENT_DIM", True),
    "mbstd_group_size": (0, limits.MAX_LATENT_DIM, "MAX_LATENT_DIM", True),
    "mbstd_num_channels": (0, limits.MAX_CHANNELS, "MAX_CHANNELS", False),
    "truncation_cutoff": (0, limits.MAX_LAYERS, "MAX_LAYERS", True),
    "freeze_layers": (0, MAX_FREEZE_LAYERS, "MAX_FREEZE_LAYERS", False),
}
_FLAGS = ("use_noise", "fp16_channels_last", "channels_last", "normalize_latents", "use_radial_filters",
          "progressive")

# StyleGAN3 (alias-free) settings. Sizes: the signal-processing knobs stay near their real values, since
# a layer's spatial size, filter taps and kernel follow from them (real: margin 10, filter 6, lrelu ×2, k 1 or 3).
MAX_SG3_MARGIN = 256
MAX_SG3_FILTER_SIZE = 16
MAX_SG3_LRELU_UPSAMPLING = 8
MAX_SG3_CONV_KERNEL = 15
_SIZES.update({
    "num_critical": (0, limits.MAX_LAYERS, "MAX_LAYERS", False),
    "margin_size": (0, MAX_SG3_MARGIN, "MAX_SG3_MARGIN", False),
    "filter_size": (1, MAX_SG3_FILTER_SIZE, "MAX_SG3_FILTER_SIZE", False),
    "lrelu_upsampling": (1, MAX_SG3_LRELU_UPSAMPLING, "MAX_SG3_LRELU_UPSAMPLING", False),
    "conv_kernel": (1, MAX_SG3_CONV_KERNEL, "MAX_SG3_CONV_KERNEL", False),
})
# Frequencies (in cycles per image) and scales: positive and finite, frequencies at most MAX_RESOLUTION.
_SG3_POSITIVE = ("first_cutoff", "first_stopband", "last_stopband_rel", "output_scale")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _refuse(what: str, message: str) -> StyleGANError:
    return StyleGANError(f"{what}: {message}", _FIX)


def _check_size(name: str, value: Any, what: str) -> None:
    low, high, limit, optional = _SIZES[name]
    if value is None and optional:
        return
    if not _is_int(value):
        raise _refuse(what, f"{name} is {limits.quote(value)}, expected an integer")
    if value < low:
        raise _refuse(what, f"{name}={value} is below {low}")
    if value > high:
        raise _refuse(what, f"{name}={value} is over the limit of {high} ({limit})")


def _check_resolution(value: Any, what: str) -> None:
    if not _is_int(value):
        raise _refuse(what, f"img_resolution is {limits.quote(value)}, expected an integer")
    if value > limits.MAX_RESOLUTION:
        raise _refuse(what, f"img_resolution={value} is over the limit of {limits.MAX_RESOLUTION} (MAX_RESOLUTION)")
    if value < 4 or value & (value - 1):
        raise _refuse(what, f"img_resolution={value} is not a power of two >= 4")


def _check_filter(name: str, value: Any, what: str) -> None:
    """1-D taps or a 2-D kernel of finite numbers with a positive sum, at most MAX_FILTER_TAPS per axis."""
    if value is None and name == "blur_filter":
        return
    rows = value if isinstance(value, (list, tuple)) else None
    if rows and all(isinstance(row, (list, tuple)) for row in rows):
        flat = [tap for row in rows for tap in row]
        shape_ok = len({len(row) for row in rows}) == 1 and len(rows) <= MAX_FILTER_TAPS
    else:
        flat, shape_ok = rows, True
    if flat is None or not flat or not shape_ok or not all(_is_real(tap) for tap in flat):
        raise _refuse(what, f"{name} is {limits.quote(value)}, expected a list of numbers")
    if len(rows) > MAX_FILTER_TAPS or len(flat) > MAX_FILTER_TAPS**2:
        raise _refuse(what, f"{name} has more than {MAX_FILTER_TAPS} taps per axis (MAX_FILTER_TAPS)")
    if not sum(flat) > 0:
        raise _refuse(what, f"{name} {limits.quote(value)} does not sum to a positive number")


def _check_one(name: str, value: Any, activations: tuple[str, ...], what: str) -> None:
    if name in _SIZES:
        _check_size(name, value, what)
    elif name == "img_resolution":
        _check_resolution(value, what)
    elif name == "activation":
        if not isinstance(value, str) or value not in activations:
            raise _refuse(what, f"activation {limits.quote(value)} is not one of {', '.join(activations)}")
    elif name == "architecture":
        if not isinstance(value, str) or value not in ARCHITECTURES:
            raise _refuse(what, f"architecture {limits.quote(value)} is not one of {', '.join(ARCHITECTURES)}")
    elif name in ("resample_filter", "blur_filter"):
        _check_filter(name, value, what)
    elif name == "lr_multiplier":
        if not _is_real(value) or value <= 0:
            raise _refuse(what, f"lr_multiplier is {limits.quote(value)}, expected a positive number")
    elif name in ("w_avg_beta", "conv_clamp"):
        if value is not None and (not _is_real(value) or value < 0):
            raise _refuse(what, f"{name} is {limits.quote(value)}, expected None or a non-negative number")
    elif name in ("fmap_decay", "truncation_psi"):
        if not _is_real(value):
            raise _refuse(what, f"{name} is {limits.quote(value)}, expected a finite number")
    elif name in _SG3_POSITIVE:
        if not _is_real(value) or not 0 < value <= limits.MAX_RESOLUTION:
            raise _refuse(what, f"{name} is {limits.quote(value)}, expected a number in (0, {limits.MAX_RESOLUTION}]")
    elif name == "magnitude_ema_beta":
        if not _is_real(value) or not 0 <= value <= 1:
            raise _refuse(what, f"magnitude_ema_beta is {limits.quote(value)}, expected a number in [0, 1]")
    elif name in _FLAGS:
        if not isinstance(value, bool) and value not in (0, 1):
            raise _refuse(what, f"{name} is {limits.quote(value)}, expected true or false")
    elif name == "fused_scale":
        if not isinstance(value, bool) and value != "auto":
            raise _refuse(what, f"fused_scale is {limits.quote(value)}, expected true, false or 'auto'")


def _check_shape_of_settings(init_kwargs: Any, what: str) -> None:
    """Dicts with string keys, lists and plain values; shallow and small (no cycles, no shared blow-ups)."""
    stack, count = [(init_kwargs, 1)], 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if depth > limits.MAX_JSON_DEPTH:
            raise _refuse(what, f"its settings nest deeper than {limits.MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH)")
        if count > MAX_KWARG_ITEMS:
            raise _refuse(what, f"its settings hold more than {MAX_KWARG_ITEMS} values (MAX_KWARG_ITEMS)")
        if isinstance(item, dict):
            for key in item:
                if not isinstance(key, str):
                    raise _refuse(what, f"its settings have a non-string name {limits.quote(key)}")
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend((child, depth + 1) for child in item)
        elif not (item is None or isinstance(item, (bool, int, float, str))):
            raise _refuse(what, f"its settings hold a {type(item).__name__}, not plain data")


def check_init_kwargs(class_name: str, init_kwargs: Any, what: str) -> None:
    """Refuse (one StyleGANError) settings that are not plain data, or that ask for sizes over the limits.

    Known arguments are checked wherever they appear (top level or in ``mapping_kwargs``,
    ``synthesis_kwargs``, ``block_kwargs``, ``epilogue_kwargs``); unknown ones are left to the class.
    """
    if not isinstance(init_kwargs, dict):
        raise _refuse(what, f"its settings are a {type(init_kwargs).__name__}, expected a dict")
    _check_shape_of_settings(init_kwargs, what)
    activations = V1_ACTIVATIONS if class_name in V1_CLASSES else tuple(ACTIVATIONS)
    pending = [init_kwargs]
    while pending:
        kwargs = pending.pop()
        for name, value in kwargs.items():
            if name in NESTED_KWARGS:
                if value is not None and not isinstance(value, dict):
                    raise _refuse(what, f"{name} is {limits.quote(value)}, expected a dict")
                pending.append(value or {})
            else:
                _check_one(name, value, activations, what)


# --------------------------------------------------------------------------------------------------
# Shape-only construction


def _meta_like(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.device.type == "meta"


def _broadcast(*shapes: torch.Size) -> list[int]:
    """numpy broadcasting of shapes (torch.broadcast_shapes imports sympy, which takes half a second)."""
    ndim = max(len(shape) for shape in shapes)
    out = [1] * ndim
    for shape in shapes:
        for axis, size in enumerate(shape, start=ndim - len(shape)):
            if size != 1:
                if out[axis] not in (1, size):
                    raise RuntimeError(f"shapes {[list(s) for s in shapes]} do not broadcast")
                out[axis] = size
    return out


def _size_from(args: tuple) -> list[int]:
    if len(args) == 1 and isinstance(args[0], (list, tuple, torch.Size)):
        return list(args[0])
    return list(args)


class _ShapeOnly(TorchFunctionMode):
    """Tensors made by factories live on the meta device (no memory); small ones built from values stay real.

    Arithmetic on meta tensors during construction (``randn(...) / lr_multiplier``) is answered with an
    empty meta tensor of the result's shape here: torch's own meta kernels for these ops are written in
    Python and importing them costs about a second. Ops not listed run as usual (correct, only slower).
    """

    _FACTORIES: dict[Callable, Callable[[tuple], list[int]]] = {
        torch.randn: _size_from, torch.rand: _size_from, torch.zeros: _size_from, torch.ones: _size_from,
        torch.empty: _size_from, torch.full: lambda args: list(args[0]),
    }
    _ELEMENTWISE = {torch.Tensor.div, torch.Tensor.__truediv__, torch.Tensor.mul, torch.Tensor.__mul__,
                    torch.Tensor.__rmul__, torch.Tensor.add, torch.Tensor.__add__, torch.Tensor.sub,
                    torch.Tensor.__sub__, torch.div, torch.mul}
    _OUTER = {torch.outer, torch.ger, torch.Tensor.outer, torch.Tensor.ger}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self._FACTORIES and "out" not in kwargs:
            dtype = kwargs.get("dtype") or torch.get_default_dtype()
            return torch.empty(self._FACTORIES[func](args), dtype=dtype, device="meta")
        if any(_meta_like(a) for a in args):
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            if func in self._ELEMENTWISE:
                shape = _broadcast(*(t.shape for t in tensors))
                return torch.empty(shape, dtype=tensors[0].dtype, device="meta")
            if func in self._OUTER and len(tensors) == 2:
                return torch.empty([tensors[0].numel(), tensors[1].numel()], dtype=tensors[0].dtype, device="meta")
            if func is torch.Tensor.sum and len(args) == 1 and not kwargs:
                return torch.empty([], dtype=args[0].dtype, device="meta")
            if func is torch.Tensor.to and not kwargs.get("device") and not any(
                    isinstance(a, (str, torch.device)) for a in args[1:]):
                dtype = kwargs.get("dtype") or next((a for a in args[1:] if isinstance(a, torch.dtype)), None)
                return args[0] if dtype is None else torch.empty(args[0].shape, dtype=dtype, device="meta")
        return func(*args, **kwargs)


def planned_module(cls: type[nn.Module], init_kwargs: dict[str, Any]) -> nn.Module:
    """``cls(**init_kwargs)`` with its large tensors on the meta device: exact structure, no memory.

    Raises what the constructor raises for arguments it does not accept.
    """
    with _ShapeOnly():
        return cls(**init_kwargs)


def state_values(module: nn.Module) -> int:
    """How many values a module holds: parameters and buffers, persistent or not."""
    return sum(t.numel() for t in module.parameters()) + sum(t.numel() for t in module.buffers())


def planned_state(cls: type[nn.Module], class_name: str, init_kwargs: dict[str, Any],
                  what: str) -> tuple[dict[str, torch.Size], int]:
    """(state-dict shapes, total values) of ``cls(**init_kwargs)``, built shape-only; refused over MAX_PARAMETERS."""
    check_init_kwargs(class_name, init_kwargs, what)
    try:
        module = planned_module(cls, init_kwargs)
    except (TypeError, ValueError, KeyError, ArithmeticError, RuntimeError) as e:
        raise StyleGANError(f"cannot build {what} from the stored settings: {limits.quote(str(e), 300)}",
                            "the file comes from a network version this tool does not support") from None
    total = state_values(module)
    if total > limits.MAX_PARAMETERS:
        raise _refuse(what, f"its settings describe a network of {total} values, over the limit of "
                            f"{limits.MAX_PARAMETERS} (MAX_PARAMETERS)")
    return {name: t.shape for name, t in module.state_dict().items()}, total


__all__ = ["check_init_kwargs", "planned_module", "planned_state", "state_values", "MAX_FILTER_TAPS",
           "MAX_KWARG_ITEMS"]
