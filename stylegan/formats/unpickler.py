"""A restricted unpickler: only an explicit allow-list of globals is ever resolved.

Every global a pickle asks for goes through ``find_class``. Each allowed name maps to a small function
of ours that checks its arguments and builds plain data (tensors, numpy values, dicts, records); nothing
is imported by name, and no code stored in a file is run. Anything else raises ``UnsafePickleError``.

A hostile pickle may also try to set attributes on what it is handed (pickle's BUILD opcode): the
objects the allow-list hands out are frozen slotted dataclasses whose ``__setstate__`` refuses, and the
one class it must hand out (EasyDict, for NEWOBJ) is a throwaway subclass made for each load.
"""

from __future__ import annotations

import io
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np
import torch

from stylegan.errors import StyleGANError, UnsafePickleError
from stylegan.formats.records import EasyDict, PersistentRecord

_FIX = "only official StyleGAN network pickles can be read; re-save the network with a trusted tool"


class TensorFlowPickleError(StyleGANError):
    """The file is a TensorFlow (dnnlib.tflib) pickle; the loader turns this into its own message."""


class CorruptPickleError(Exception):
    """Malformed data inside an otherwise allowed call; the loader reports the file as corrupt."""


def _refuse_build(record: Any, state: Any) -> None:
    """pickle's BUILD on something the allow-list handed out: always refused."""
    raise CorruptPickleError(f"the pickle tries to change a {type(record).__name__.lstrip('_')}")


def _sealed(cls: type) -> type:
    """A frozen, slotted dataclass (no ``__dict__``, fields set only by ``__init__``) that BUILD cannot
    touch either: the dataclass's own ``__setstate__`` (which would set fields) is replaced by a refusal."""
    frozen = dataclass(frozen=True, slots=True, eq=False)(cls)
    frozen.__setstate__ = _refuse_build
    return frozen


@_sealed
class _TypeMarker:
    """Stands in for a class a pickle may name only as an argument (e.g. the type of a tensor)."""

    name: str


@_sealed
class _Global:
    """A wrapper around one allowed function, made afresh for each load."""

    name: str
    fn: Callable[..., Any]

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the globals in ``allowed`` ({(module, name): object})."""

    def __init__(self, file: BinaryIO, source: str, allowed: dict[tuple[str, str], Any],
                 persistent: Callable[[Any], Any] | None = None):
        super().__init__(file)
        self.source = source
        self.allowed = allowed
        self.persistent = persistent  # only nested torch.save blobs use persistent ids (their storages)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.allowed:
            return self.allowed[(module, name)]
        if module.startswith("dnnlib.tflib") and TF_NETWORK_GLOBAL not in self.allowed:
            raise TensorFlowPickleError(f"{self.source} is a TensorFlow pickle (it asks for '{module}.{name}')")
        raise UnsafePickleError(f"refusing to load {self.source}: it asks for global '{module}.{name}', "
                                "which is not on the allow-list", _FIX)

    def persistent_load(self, pid: Any) -> Any:
        if self.persistent is not None:
            return self.persistent(pid)
        raise UnsafePickleError(f"refusing to load {self.source}: it asks for a persistent object "
                                f"{_short_repr(pid)}, which official network pickles never do", _FIX)


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise CorruptPickleError(what)


# --------------------------------------------------------------------------------------------------
# Tensors. A plain pickle of a tensor is _rebuild_tensor_v2(storage, offset, size, stride, ...) and its
# storage is torch.storage._load_from_bytes(blob), where blob is a legacy torch.save of the storage.


@_sealed
class _Storage:
    """A tensor storage read from a nested blob: a flat 1-D tensor of its dtype and length."""

    flat: torch.Tensor


_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64, "ComplexDoubleStorage": torch.complex128,
}
LEGACY_TORCH_SAVE_MAGIC = 0x1950A86A20F9469CFC6C  # first record of a legacy (non-zip) torch.save file
_LEGACY_PROTOCOL = 1001


def _ints(value: Any, what: str) -> tuple[int, ...]:
    _check(isinstance(value, (tuple, list)) and all(type(v) is int for v in value), f"bad tensor {what}")
    return tuple(value)


def _rebuild_tensor_v2(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    _check(isinstance(storage, _Storage), "a tensor without a storage")
    _check(type(offset) is int and offset >= 0, "bad tensor offset")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    _check(len(size) == len(stride), "tensor size and stride disagree")
    _check(not metadata, "tensor metadata (conjugate/negative bits) is not supported")
    try:  # as_strided checks the view lies inside the storage
        return storage.flat.as_strided(size, stride, offset).clone()
    except RuntimeError as e:
        raise CorruptPickleError(f"tensor outside its storage ({e})") from None


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None,
                       state: Any = None) -> torch.Tensor:
    # We copy values into our own modules, so a plain tensor is all we need; Python-level state
    # (_rebuild_parameter_with_state) is dropped.
    _check(isinstance(data, torch.Tensor), "a parameter without a tensor")
    return data


_TENSOR_REBUILDERS = (_rebuild_tensor_v2, _rebuild_parameter)


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any = None) -> torch.Tensor:
    # Tensor subclasses / tensors with attributes: allowed only for Tensor and Parameter, rebuilt plain.
    _check(isinstance(func, _Global) and func.fn in _TENSOR_REBUILDERS, "a tensor rebuilt by an unknown function")
    _check(isinstance(new_type, _TypeMarker) and new_type.name in ("Tensor", "Parameter"),
           "a tensor of an unknown type")
    _check(isinstance(args, tuple), "bad tensor arguments")
    return func(*args)


def _storage_from_legacy_blob(blob: Any, source: str) -> _Storage:
    """Parse a legacy ``torch.save`` of one storage: four pickles, a key list, then raw data per key."""
    _check(isinstance(blob, (bytes, bytearray)), "a storage without bytes")
    f = io.BytesIO(blob)
    roots: dict[str, tuple[torch.dtype, int]] = {}
    markers = {("torch", name): _TypeMarker(name) for name in _STORAGE_DTYPES}

    def storage_id(pid: Any) -> Any:
        _check(isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage", "bad storage reference")
        _, kind, key, _location, numel, view = pid  # location ignored: everything comes to the CPU
        _check(isinstance(kind, _TypeMarker) and isinstance(key, str) and type(numel) is int and numel >= 0,
               "bad storage reference")
        _check(view is None, "storage views (PyTorch < 1.0 files) are not supported")
        roots[key] = (_STORAGE_DTYPES[kind.name], numel)
        return ("storage", key)

    def load_one(with_storages: bool = False) -> Any:
        return RestrictedUnpickler(f, source, markers, storage_id if with_storages else None).load()

    _check(load_one() == LEGACY_TORCH_SAVE_MAGIC, "a nested tensor blob with an unknown header")
    _check(load_one() == _LEGACY_PROTOCOL, "a nested tensor blob of an unknown version")
    sys_info = load_one()
    _check(isinstance(sys_info, dict) and sys_info.get("little_endian") is True and sys.byteorder == "little",
           "a big-endian tensor blob")
    result = load_one(with_storages=True)
    keys = load_one()
    _check(isinstance(keys, list) and len(keys) == len(roots) == 1 and keys[0] in roots,
           "a nested tensor blob that is not one storage")
    dtype, numel = roots[keys[0]]
    stored = int.from_bytes(f.read(8), "little", signed=True)
    nbytes = numel * dtype.itemsize
    raw = f.read(nbytes)
    _check(stored == numel and len(raw) == nbytes, "a truncated tensor blob")
    _check(result == ("storage", keys[0]), "a nested tensor blob that is not one storage")
    flat = torch.frombuffer(bytearray(raw), dtype=dtype) if numel else torch.empty(0, dtype=dtype)
    return _Storage(flat)


# --------------------------------------------------------------------------------------------------
# numpy values: scalars (e.g. weight gains stored as attributes), dtypes, and arrays (TF pickles).


def _np_dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
    _check(isinstance(spec, str), "bad numpy dtype")
    return np.dtype(spec, bool(align), bool(copy))


def _np_scalar(dtype: Any, data: Any = None) -> np.generic:
    _check(isinstance(dtype, np.dtype) and not dtype.hasobject, "a numpy scalar of an unsupported type")
    _check(isinstance(data, bytes) and len(data) == dtype.itemsize, "bad numpy scalar")
    return np.frombuffer(data, dtype=dtype)[0]


def _np_reconstruct(subtype: Any, shape: Any = (0,), typecode: Any = b"b") -> np.ndarray:
    # The array's contents arrive afterwards through ndarray.__setstate__ (pickle's BUILD).
    _check(isinstance(subtype, _TypeMarker) and subtype.name == "ndarray", "an array of an unsupported type")
    return np.empty((0,), dtype=np.uint8)


def _np_frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any = "C") -> np.ndarray:
    # Protocol 5 pickles (numpy >= 1.16) write arrays as numpy.core.numeric._frombuffer(bytes, dtype, shape, order).
    _check(isinstance(buffer, (bytes, bytearray, memoryview, pickle.PickleBuffer)), "an array without bytes")
    _check(isinstance(dtype, np.dtype) and not dtype.hasobject, "an array of an unsupported type")
    _check(isinstance(shape, tuple) and all(type(d) is int and d >= 0 for d in shape), "bad array shape")
    _check(order in ("C", "F"), "bad array order")
    data = bytes(buffer)
    _check(len(data) == dtype.itemsize * int(np.prod(shape, dtype=np.int64)), "a truncated array")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order).copy(order="C")


def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    # Protocol-2 pickles write bytes as _codecs.encode(str, 'latin1').
    _check(isinstance(text, str) and encoding == "latin1", "bad encoded bytes")
    return text.encode("latin1")


def _reconstruct_persistent_obj(meta: Any) -> PersistentRecord:
    # torch_utils.persistence would exec meta['module_src'] here; we keep only name and state.
    _check(isinstance(meta, dict) and meta.get("type") == "class", "a persistent object of an unknown kind")
    _check(isinstance(meta.get("class_name"), str) and isinstance(meta.get("state"), dict),
           "a persistent object without class name or state")
    return PersistentRecord(class_name=meta["class_name"], state=dict(meta["state"]))


def _set(items: Any = ()) -> set:
    return set(items)


def _frozenset(items: Any = ()) -> frozenset:
    return frozenset(items)


def _ordered_dict(items: Any = ()) -> dict:
    from collections import OrderedDict

    return OrderedDict(items)


def official_globals(source: str) -> dict[tuple[str, str], Any]:
    """The allow-list for official PyTorch network pickles, as fresh objects for one load."""
    easydict = type("EasyDict", (EasyDict,), {})  # a throwaway subclass: NEWOBJ needs a real class
    tensor, parameter, ndarray = _TypeMarker("Tensor"), _TypeMarker("Parameter"), _TypeMarker("ndarray")
    functions: dict[tuple[str, str], Callable[..., Any]] = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
        ("collections", "OrderedDict"): _ordered_dict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch.storage", "_load_from_bytes"): lambda blob: _storage_from_legacy_blob(blob, source),
        ("numpy", "dtype"): _np_dtype,
        ("_codecs", "encode"): _codecs_encode,
    }
    # Names that moved between versions: each spelling a supported torch / numpy / pickle protocol writes.
    for name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
        functions["torch._utils", name] = _rebuild_parameter
    for module in ("torch._tensor", "torch._utils"):
        functions[module, "_rebuild_from_type_v2"] = _rebuild_from_type_v2
    for core in ("numpy.core", "numpy._core"):  # numpy 2 renamed numpy.core
        functions[f"{core}.multiarray", "scalar"] = _np_scalar
        functions[f"{core}.multiarray", "_reconstruct"] = _np_reconstruct
        functions[f"{core}.numeric", "_frombuffer"] = _np_frombuffer
    for builtins in ("builtins", "__builtin__"):  # protocol <= 3 writes sets this way; protocol 2 as Python 2 names
        functions[builtins, "set"] = _set
        functions[builtins, "frozenset"] = _frozenset
    allowed: dict[tuple[str, str], Any] = {key: _Global(".".join(key), fn) for key, fn in functions.items()}
    allowed.update({
        ("dnnlib.util", "EasyDict"): easydict,
        ("dnnlib", "EasyDict"): easydict,
        ("torch", "Tensor"): tensor,
        ("torch._tensor", "Tensor"): tensor,
        ("torch.nn.parameter", "Parameter"): parameter,
        ("numpy", "ndarray"): ndarray,
    })
    return allowed


# --------------------------------------------------------------------------------------------------
# TensorFlow pickles: a tuple of dnnlib.tflib.network.Network objects. Pickle makes each with NEWOBJ and
# hands it its state (a dict: name, kwargs, variables, ...) through __setstate__ (BUILD). The real class
# would exec the stored build_module_src there; our stand-in only keeps the dict.

TF_NETWORK_GLOBAL = ("dnnlib.tflib.network", "Network")


@dataclass(frozen=True, slots=True, eq=False)
class TFNetworkStub:
    """What a TF pickle's Network becomes: an inert holder of its state dict, which BUILD gives it once.

    NEWOBJ makes it empty; frozen, so the one way in is ``__setstate__``, which refuses a second state.
    """

    _state: Any = field(init=False, repr=False)

    def __setstate__(self, state: Any) -> None:
        _check(isinstance(state, dict), "a TensorFlow network whose state is not a dict")
        if self.state is not None:
            raise CorruptPickleError("the pickle tries to change a TensorFlow network")
        object.__setattr__(self, "_state", state)

    @property
    def state(self) -> dict[str, Any] | None:
        """The state dict, or None if the pickle never gave one."""
        return getattr(self, "_state", None)


def restricted_load_tf(file: BinaryIO, source: str) -> Any:
    """Unpickle a TensorFlow network pickle: the official allow-list plus a stand-in for
    ``dnnlib.tflib.network.Network`` (instances of a throwaway ``TFNetworkStub`` subclass)."""
    allowed = official_globals(source)
    allowed[TF_NETWORK_GLOBAL] = type("Network", (TFNetworkStub,), {"__slots__": ()})
    return RestrictedUnpickler(file, source, allowed).load()


def restricted_load(file: BinaryIO, source: str, extra_globals: dict[tuple[str, str], Any] | None = None) -> Any:
    """Unpickle ``file`` with the official allow-list (plus ``extra_globals``).

    Raises UnsafePickleError for a global off the list, TensorFlowPickleError for a TF pickle, and
    CorruptPickleError (or pickle's own errors) for malformed data.
    """
    allowed = official_globals(source)
    allowed.update(extra_globals or {})
    return RestrictedUnpickler(file, source, allowed).load()


# Errors that malformed pickle data can raise while our allow-listed functions build objects.
_DATA_ERRORS = (CorruptPickleError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                IndexError, KeyError, OverflowError, RuntimeError, RecursionError, UnicodeDecodeError)


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def load_pickle_file(path: Path, source: str, load: Callable[[BinaryIO, str], Any] = restricted_load) -> Any:
    """Open ``path`` and run the restricted ``load`` on it; malformed data becomes one StyleGANError."""
    try:
        with open(path, "rb") as f:
            return load(f, source)
    except StyleGANError:
        raise
    except _DATA_ERRORS as e:
        raise StyleGANError(f"cannot read {source}: the pickle is truncated or corrupt ({one_line(e)})",
                            "download or copy the file again") from None
