"""A restricted unpickler: only an explicit allow-list of globals is resolved, and nothing it hands a pickle
can be driven by the pickle.

Every global a pickle asks for goes through ``find_class``. Each allowed name maps to a small function
of ours that checks its arguments and returns an inert record (a tensor, storage, array, scalar or dtype
*request*, or a network record); nothing is imported by name, and no code stored in a file is run.
Anything else raises ``UnsafePickleError``.

A pickle can do more than call what it is handed: its BUILD opcode calls ``__setstate__`` (or sets
attributes) on any object on its stack, NEWOBJ calls ``__new__``, and dict/set opcodes hash its values.
So the opcodes themselves are checked (this is pickle's own Python unpickler with a few opcodes replaced):

- BUILD is accepted only by the three records that take a state once, each validating it as plain data:
  a numpy dtype request (byte order only), an array waiting for its contents (``_reconstruct``), and the
  stand-in for a TensorFlow network (in torch.save files also the inert-class stand-ins, each taking a dict
  of attributes once). BUILD on anything else is refused.
- NEWOBJ makes only our EasyDict and TF-network stand-ins (and, in torch.save files, the stand-ins of a few
  inert classes, ``INERT_CLASSES``); REDUCE calls only allow-listed functions.
- A length the file declares (bytes, strings, frames) is checked against the bytes left in the file
  before anything is allocated; tuples nest at most ``MAX_JSON_DEPTH`` deep (hashing a deeper one
  overflows the C stack); opcodes that network pickles never use are refused.

Dtypes, arrays, scalars and tensors are built by our code, from validated plain values, only after the
last opcode ran (``_materialize``): a dtype is one of a few plain numeric kinds; an array or scalar is a
copy of bytes the file holds; a tensor is a view of a storage read from bytes the file holds, checked to
lie inside it. Everything built is charged to a budget of twice the file's size (plus 64 MiB), since a
real file stores each value once: a small pickle cannot make huge tensors out of repeated references.
"""

from __future__ import annotations

import io
import pickle
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np
import torch

from stylegan.errors import StyleGANError, UnsafePickleError
from stylegan.formats.records import EasyDict, PersistentRecord
from stylegan.limits import MAX_JSON_DEPTH, MAX_MEMBER_BYTES, quote

_FIX = "only official StyleGAN network pickles can be read; re-save the network with a trusted tool"

MAX_DIMS = 16  # dimensions of one tensor or array (real: at most 5)
MAX_INT_BYTES = 64  # bytes of one pickled integer (real: at most 10, the legacy torch.save magic number)
BUDGET_SLACK = 64 * 2**20  # what a load may build beyond twice the file's size (views of one storage, scalars)


class TensorFlowPickleError(StyleGANError):
    """The file is a TensorFlow (dnnlib.tflib) pickle; the loader turns this into its own message."""


class CorruptPickleError(Exception):
    """Malformed or hostile data inside an otherwise allowed pickle; the loader reports the file as corrupt."""


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise CorruptPickleError(what)


def _kind(value: Any) -> str:
    """What ``value`` is, for a message; never its content (which may be huge or deeply nested)."""
    if isinstance(value, _Record):
        return value.kind
    if isinstance(value, PersistentRecord):
        return "network record"
    if isinstance(value, type):
        return "class"
    return type(value).__name__


# --------------------------------------------------------------------------------------------------
# Records: what the allow-listed functions hand back to the pickle.


class _Record:
    """Base of every object handed to a pickle: slotted (no ``__dict__``), attributes set only by our
    code, and closed to BUILD unless the subclass takes a state (``take_state``)."""

    __slots__ = ()
    kind = "record"

    def __init__(self, **values: Any):
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def __setattr__(self, attribute: str, _value: Any) -> None:
        raise CorruptPickleError(f"the pickle tries to change a {self.kind}")

    def __delattr__(self, attribute: str) -> None:
        raise CorruptPickleError(f"the pickle tries to change a {self.kind}")

    def __setstate__(self, state: Any) -> None:  # only reachable outside our unpickler; refused all the same
        raise CorruptPickleError(f"the pickle tries to change a {self.kind}")

    def take_state(self, state: Any) -> None:
        """pickle's BUILD on this record: refused unless a subclass accepts one state."""
        raise CorruptPickleError(f"the pickle tries to change a {self.kind}")


class _TypeMarker(_Record):
    """Stands in for a class a pickle may name only as an argument (e.g. the type of a tensor)."""

    __slots__ = ("name",)
    kind = "type name"


class _Global(_Record):
    """One allowed function, as the pickle sees it."""

    __slots__ = ("name", "fn")
    kind = "function"

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)


class _Storage(_Record):
    """A tensor storage: its declared dtype and element count, and ``flat``, a 1-D tensor of ours holding its
    bytes. A legacy torch.save file stores the bytes after the pickle, so there ``flat`` is None while the
    pickle runs and is filled once the declared sizes were checked against the file."""

    __slots__ = ("dtype", "flat", "numel")
    kind = "tensor storage"


class _TensorRecord(_Record):
    """A tensor: a view of a storage, checked to lie inside its declared size, built by us once the load has
    read every storage's bytes (``build``)."""

    __slots__ = ("copy", "offset", "size", "storage", "stride")
    kind = "tensor"

    def build(self) -> torch.Tensor:
        flat = self.storage.flat
        _check(flat is not None, "a tensor whose storage the file never holds")
        view = flat.as_strided(self.size, self.stride, self.offset)
        return view.clone() if self.copy else view  # a copy: part of a storage shared with other tensors


class _ScalarRecord(_Record):
    """A numpy scalar built by us from bytes the file holds."""

    __slots__ = ("value",)
    kind = "numpy scalar"


# numpy kinds a network file holds: plain numbers and booleans (no objects, strings, fields or subarrays).
_NUMPY_KINDS = ("b1", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8")


class _DtypeRecord(_Record):
    """``numpy.dtype(kind)`` as a request: one of ``_NUMPY_KINDS``; its one BUILD may set the byte order."""

    __slots__ = ("name", "order")
    kind = "numpy dtype"

    def take_state(self, state: Any) -> None:
        # numpy writes (version, byte order, subarray, names, fields, elsize, alignment, flags[, metadata]).
        _check(getattr(self, "order", None) is None, "the pickle tries to change a numpy dtype")
        _check(type(state) is tuple and len(state) in (8, 9) and state[0] in (3, 4), "a numpy dtype with a bad state")
        order, subarray, names, fields = state[1:5]
        _check(subarray is None and names is None and fields is None and (len(state) == 8 or state[8] is None),
               "a structured numpy dtype (fields, subarrays or metadata), which network files never hold")
        _check(all(type(v) is int for v in state[5:8]), "a numpy dtype with a bad state")
        _check(order in ("<", "=", "|"), "a big-endian or unknown numpy byte order")
        _check(order != "|" or self.name[1] == "1", "a numpy dtype with a bad byte order")
        self._set("order", order)

    def numpy(self) -> np.dtype:
        return np.dtype("<" + self.name)  # little-endian: checked against sys.byteorder at load


class _ArrayRecord(_Record):
    """A numpy array: from ``_frombuffer`` at once, from ``_reconstruct`` when its one BUILD gives the data."""

    __slots__ = ("array", "load")
    kind = "numpy array"

    def take_state(self, state: Any) -> None:
        _check(getattr(self, "array", None) is None, "the pickle tries to change a numpy array")
        # ndarray's state: ([version,] shape, dtype, is_fortran, raw bytes)
        _check(type(state) is tuple and len(state) in (4, 5), "a numpy array with a bad state")
        shape, dtype, fortran, data = state[-4:]
        _check(type(fortran) in (bool, int), "a numpy array with a bad state")
        if isinstance(data, str):  # Python 2 pickles (CIFAR-10) carry the bytes as a latin-1 str
            data = data.encode("latin1")
        self._set("array", self.load.array_from_bytes(data, dtype, shape, "F" if fortran else "C"))


class TFNetworkStub(_Record):
    """What a TF pickle's ``dnnlib.tflib.network.Network`` becomes: an inert holder of its state dict.

    NEWOBJ makes it empty; its one BUILD gives it the state (a dict), and a second one is refused.
    """

    __slots__ = ("_state",)
    kind = "TensorFlow network"

    def take_state(self, state: Any) -> None:
        _check(isinstance(state, dict), "a TensorFlow network whose state is not a dict")
        _check(self.state is None, "the pickle tries to change a TensorFlow network")
        self._set("_state", state)

    @property
    def state(self) -> dict[str, Any] | None:
        """The state dict, or None if the pickle never gave one."""
        return getattr(self, "_state", None)


# --------------------------------------------------------------------------------------------------
# Reading: bounded reads, and pickle's Python unpickler with the opcodes that matter replaced.


class _BoundedReader:
    """A file whose reads may not go past its end: a length the pickle declares is checked before
    anything of that size is allocated."""

    def __init__(self, file: BinaryIO):
        self.file = file
        try:
            start = file.tell()
            self.left = file.seek(0, io.SEEK_END) - start
            file.seek(start)
        except (AttributeError, OSError, ValueError):  # not seekable: rely on the file's own reads
            self.left = sys.maxsize
        self.size = self.left

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.left
        if n > self.left:
            raise CorruptPickleError(f"it declares {n} bytes where only {self.left} remain in the file")
        data = self.file.read(n)
        self.left -= len(data)
        return data

    def read_bytearray(self, n: int) -> bytearray:
        """The next ``n`` bytes, read straight into a new bytearray (no second copy of a large storage)."""
        if n > self.left:
            raise CorruptPickleError(f"it declares {n} bytes where only {self.left} remain in the file")
        data = bytearray(n)
        got = self.file.readinto(data) if n else 0
        self.left -= got
        _check(got == n, "the file is truncated")
        return data

    def readline(self) -> bytes:
        line = self.file.readline()
        self.left -= len(line)
        return line


def _refused_opcode(name: str) -> Callable[[Any], None]:
    def load(self: Any) -> None:
        raise CorruptPickleError(f"it uses the pickle opcode {name}, which network pickles never do")
    return load


class RestrictedUnpickler(pickle._Unpickler):
    """pickle's Python unpickler resolving only the globals in ``allowed`` ({(module, name): object}).

    ``classes`` are the classes NEWOBJ may instantiate. Use ``load`` for records; ``restricted_load``
    and friends also build the live values from them once the pickle has ended.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file: Any, source: str, allowed: dict[tuple[str, str], Any],
                 persistent: Callable[[Any], Any] | None = None, classes: tuple[type, ...] = (),
                 encoding: str = "ASCII"):
        super().__init__(file, encoding=encoding)
        self.source = source
        self.allowed = allowed
        self.persistent = persistent  # only nested torch.save blobs use persistent ids (their storages)
        self.classes = classes
        self.nesting: dict[int, tuple[int, Any]] = {}  # id(tuple or frozenset) -> (depth, the object)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.allowed:
            return self.allowed[(module, name)]
        if module.startswith("dnnlib.tflib") and TF_NETWORK_GLOBAL not in self.allowed:
            raise TensorFlowPickleError(f"{self.source} is a TensorFlow pickle (it asks for "
                                        f"{quote(module + '.' + name)})")
        error = UnsafePickleError(f"refusing to load {self.source}: it asks for global "
                                  f"{quote(module + '.' + name)}, which is not on the allow-list", _FIX)
        error.global_name = f"{module}.{name}"
        raise error

    def persistent_load(self, pid: Any) -> Any:
        if self.persistent is not None:
            return self.persistent(pid)
        raise UnsafePickleError(f"refusing to load {self.source}: it asks for a persistent object "
                                f"({_kind(pid)}), which official network pickles never do", _FIX)

    # -- opcodes ------------------------------------------------------------------------------------

    def load_build(self) -> None:
        state = self.stack.pop()
        target = self.stack[-1]
        if isinstance(target, _Record):
            target.take_state(state)
        elif type(target) in (dict, EasyDict) and (state is None or type(state) is dict):
            pass  # attributes of a dict (old Pythons pickle an OrderedDict's __dict__): dropped, nothing is set
        else:
            raise CorruptPickleError(f"the pickle tries to change a {_kind(target)}")

    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        _check(isinstance(func, _Global), f"the pickle calls a {_kind(func)}")
        _check(type(args) is tuple, "the pickle calls a function with bad arguments")
        self.stack[-1] = func(*args)

    def _new(self, args: Any, kwargs: Any) -> None:
        cls = self.stack.pop()
        _check(isinstance(cls, type) and cls in self.classes, f"the pickle makes an object of a {_kind(cls)}")
        _check(type(args) is tuple and not args and not kwargs, "the pickle makes an object with arguments")
        self.append(cls.__new__(cls))

    def load_newobj(self) -> None:
        args = self.stack.pop()
        self._new(args, None)

    def load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        self._new(args, kwargs)

    def load_bytearray8(self) -> None:
        (n,) = struct.unpack("<Q", self.read(8))
        data = self.read(n)  # bounded: a length past the file's end is refused before allocating
        _check(len(data) == n, "the pickle is truncated")
        self.append(bytearray(data))

    def load_long4(self) -> None:
        (n,) = struct.unpack("<i", self.read(4))
        _check(0 <= n <= MAX_INT_BYTES, f"a pickled integer of {n} bytes (the limit is {MAX_INT_BYTES})")
        self.append(pickle.decode_long(self.read(n)))

    def nest(self, value: Any) -> Any:
        """Record how deeply ``value`` (a new tuple or frozenset) nests; refuse past MAX_JSON_DEPTH."""
        depth = 1
        for item in value:
            if type(item) in (tuple, frozenset):
                known = self.nesting.get(id(item))
                depth = max(depth, 1 + (known[0] if known else _nesting_depth(item)))
        _check(depth <= MAX_JSON_DEPTH, f"tuples nested deeper than {MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH)")
        self.nesting[id(value)] = (depth, value)  # the object is kept so that its id is not reused
        return value

    def _tuple(self, items: Any, make: type = tuple) -> None:
        self.append(self.nest(make(items)))

    def load_tuple(self) -> None:
        self._tuple(self.pop_mark())

    def load_empty_tuple(self) -> None:
        self._tuple(())

    def load_tuple1(self) -> None:
        self._tuple([self.stack.pop()])

    def load_tuple2(self) -> None:
        second, first = self.stack.pop(), self.stack.pop()
        self._tuple([first, second])

    def load_tuple3(self) -> None:
        third, second, first = self.stack.pop(), self.stack.pop(), self.stack.pop()
        self._tuple([first, second, third])

    def load_frozenset(self) -> None:
        self._tuple(self.pop_mark(), frozenset)



def _nesting_depth(value: Any) -> int:
    """How deeply tuples and frozensets nest in ``value``, without recursion; stops counting past the limit."""
    deepest, stack, seen = 0, [(value, 1)], set()
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        if id(item) not in seen:
            seen.add(id(item))
            stack.extend((child, depth + 1) for child in item if type(child) in (tuple, frozenset))
    return deepest


for _code in range(256):
    if _code not in RestrictedUnpickler.dispatch:
        RestrictedUnpickler.dispatch[_code] = _refused_opcode(f"0x{_code:02x} (unknown)")
for _name in ("INST", "OBJ", "EXT1", "EXT2", "EXT4", "NEXT_BUFFER", "READONLY_BUFFER", "PERSID"):
    RestrictedUnpickler.dispatch[getattr(pickle, _name)[0]] = _refused_opcode(_name)
for _name, _method in (("BUILD", "load_build"), ("REDUCE", "load_reduce"), ("NEWOBJ", "load_newobj"),
                       ("NEWOBJ_EX", "load_newobj_ex"), ("BYTEARRAY8", "load_bytearray8"), ("LONG4", "load_long4"),
                       ("TUPLE", "load_tuple"), ("EMPTY_TUPLE", "load_empty_tuple"), ("TUPLE1", "load_tuple1"),
                       ("TUPLE2", "load_tuple2"), ("TUPLE3", "load_tuple3"), ("FROZENSET", "load_frozenset")):
    RestrictedUnpickler.dispatch[getattr(pickle, _name)[0]] = getattr(RestrictedUnpickler, _method)


# --------------------------------------------------------------------------------------------------
# One load: the allowed functions, the budget, and the values built at the end.

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64, "ComplexDoubleStorage": torch.complex128,
}
LEGACY_TORCH_SAVE_MAGIC = 0x1950A86A20F9469CFC6C  # first record of a legacy (non-zip) torch.save file
_LEGACY_PROTOCOL = 1001
_TENSOR_REBUILDERS = ("torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
                      "torch._utils._rebuild_parameter_with_state")


def _flat(raw: bytes | bytearray, dtype: torch.dtype) -> torch.Tensor:
    """A storage's bytes as a new 1-D tensor of ``dtype`` (the length was checked by the caller)."""
    buffer = raw if type(raw) is bytearray else bytearray(raw)
    return torch.frombuffer(buffer, dtype=dtype) if buffer else torch.empty(0, dtype=dtype)


def _ints(value: Any, what: str, lowest: int = 0) -> tuple[int, ...]:
    _check(type(value) is tuple and len(value) <= MAX_DIMS and all(type(v) is int and v >= lowest for v in value),
           f"bad {what}")
    return value


def _count(shape: tuple[int, ...]) -> int:
    total = 1
    for d in shape:
        total *= d
    return total


class _Load:
    """The state of one load: its source, its budget, and the functions its pickle may call."""

    def __init__(self, source: str, file_bytes: int):
        self.source = source
        self.limit = 2 * min(file_bytes, 2**62) + BUDGET_SLACK
        self.used = 0
        self.unpickler: RestrictedUnpickler | None = None  # set once the unpickler exists

    def spend(self, nbytes: int, what: str) -> None:
        """Charge ``nbytes`` the load is about to allocate; refuse past twice the file's size + 64 MiB."""
        if self.used + nbytes > self.limit:
            raise CorruptPickleError(f"{what} would take the values built from this pickle past {self.limit} "
                                     "bytes, twice the file's size plus 64 MiB: a file holds each value once, "
                                     "so it repeats references to build more than it stores")
        self.used += nbytes

    # -- tensors ------------------------------------------------------------------------------------
    # A plain pickle of a tensor is _rebuild_tensor_v2(storage, offset, size, stride, ...); its storage is
    # torch.storage._load_from_bytes(blob), where blob is a legacy torch.save of the storage.

    def rebuild_tensor(self, storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> _TensorRecord:
        _check(isinstance(storage, _Storage), "a tensor without a storage")
        _check(type(offset) is int and offset >= 0, "bad tensor offset")
        size, stride = _ints(size, "tensor size"), _ints(stride, "tensor stride")
        _check(len(size) == len(stride), "tensor size and stride disagree")
        _check(type(requires_grad) is bool, "bad tensor arguments")
        _check(not backward_hooks and not metadata, "tensor hooks or metadata (conjugate/negative bits)")
        available = storage.numel
        _check(offset <= available, f"a tensor starting at element {offset} of a storage of {available}")
        numel = _count(size)
        if numel:
            extent = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
            _check(extent <= available, f"a tensor view reaching element {extent} of a storage of {available}")
            # Each element a network file stores is in its storage once; more would be a stride-0 expansion.
            _check(numel <= available, f"a tensor of {numel} elements over a storage of {available} "
                                       "(network files store every element)")
        whole = numel == available and (not numel or extent == numel)  # the whole storage, each element once
        if not whole:  # part of a storage shared with other tensors: a copy of just this part
            self.spend(numel * storage.dtype.itemsize, "a tensor")
        return _TensorRecord(storage=storage, offset=offset, size=size, stride=stride, copy=not whole)

    def rebuild_tensor_v1(self, storage: Any, offset: Any, size: Any, stride: Any) -> _TensorRecord:
        # PyTorch < 0.4 pickled tensors as _rebuild_tensor(storage, offset, size, stride).
        return self.rebuild_tensor(storage, offset, size, stride)

    def rebuild_parameter(self, data: Any, requires_grad: Any = False, backward_hooks: Any = None,
                          state: Any = None) -> _TensorRecord:
        # We copy values into our own modules, so a plain tensor is all we need; Python-level state
        # (_rebuild_parameter_with_state) is dropped.
        _check(isinstance(data, _TensorRecord), "a parameter without a tensor")
        return data

    def rebuild_from_type(self, func: Any, new_type: Any, args: Any, state: Any = None) -> _TensorRecord:
        # Tensor subclasses / tensors with attributes: allowed only for Tensor and Parameter, rebuilt plain.
        _check(isinstance(func, _Global) and func.name in _TENSOR_REBUILDERS, "a tensor rebuilt by an unknown function")
        _check(isinstance(new_type, _TypeMarker) and new_type.name in ("Tensor", "Parameter"),
               "a tensor of an unknown type")
        _check(type(args) is tuple, "bad tensor arguments")
        return func(*args)

    def storage_from_blob(self, blob: Any) -> _Storage:
        """A storage pickled on its own (``torch.storage._load_from_bytes``): its blob is a legacy torch.save
        of the storage, whose data pickle may name nothing but storage types."""
        _check(type(blob) is bytes, "a storage without bytes")
        f = _BoundedReader(io.BytesIO(blob))
        markers = {("torch", name): _TypeMarker(name=name) for name in _STORAGE_DTYPES}
        storage = _legacy_records(f, self, lambda persistent: RestrictedUnpickler(f, self.source, markers, persistent))
        _check(isinstance(storage, _Storage), "a nested tensor blob that is not one storage")
        return storage

    # -- numpy values: scalars (e.g. weight gains stored as attributes), dtypes, and arrays (TF pickles) -----

    def dtype(self, spec: Any, align: Any = False, copy: Any = False) -> _DtypeRecord:
        _check(type(spec) is str and spec in _NUMPY_KINDS, f"a numpy dtype {quote(spec) if type(spec) is str else ''}"
               f"that is not a plain number or boolean (allowed: {', '.join(_NUMPY_KINDS)})")
        _check(type(align) in (bool, int) and type(copy) in (bool, int), "bad numpy dtype arguments")
        _check(sys.byteorder == "little", "numpy values on a big-endian machine")
        return _DtypeRecord(name=spec)

    def scalar(self, dtype: Any, data: Any = None) -> _ScalarRecord:
        _check(isinstance(dtype, _DtypeRecord), "a numpy scalar of an unsupported type")
        if isinstance(data, str):  # Python 2 pickles read with encoding='latin1'
            data = data.encode("latin1")
        dt = dtype.numpy()
        _check(type(data) is bytes and len(data) == dt.itemsize, "bad numpy scalar")
        return _ScalarRecord(value=np.frombuffer(data, dtype=dt)[0].copy())

    def reconstruct(self, subtype: Any, shape: Any = (0,), typecode: Any = b"b") -> _ArrayRecord:
        # The array's contents arrive afterwards through pickle's BUILD (see _ArrayRecord.take_state).
        _check(isinstance(subtype, _TypeMarker) and subtype.name == "ndarray", "an array of an unsupported type")
        return _ArrayRecord(array=None, load=self)

    def frombuffer(self, buffer: Any, dtype: Any, shape: Any, order: Any = "C") -> _ArrayRecord:
        # Protocol 5 pickles (numpy >= 1.16) write arrays as numpy.core.numeric._frombuffer(bytes, dtype, shape, order).
        _check(type(buffer) in (bytes, bytearray), "an array without bytes")
        _check(order in ("C", "F"), "bad array order")
        return _ArrayRecord(array=self.array_from_bytes(buffer, dtype, shape, order), load=self)

    def array_from_bytes(self, data: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
        """A new C-contiguous array of ``dtype`` and ``shape`` holding a copy of ``data``, after checking
        that its size is exactly the bytes present."""
        _check(isinstance(dtype, _DtypeRecord), "an array of an unsupported type")
        _check(type(data) in (bytes, bytearray), "an array without bytes")
        shape = _ints(shape, "array shape")
        dt = dtype.numpy()
        _check(_count(shape) * dt.itemsize == len(data), f"an array of shape {list(shape)} with {len(data)} bytes")
        self.spend(len(data), "an array")
        if not data:
            return np.zeros(shape, dtype=dt)
        return np.frombuffer(data, dtype=dt).reshape(shape, order=order).copy(order="C")

    # -- everything else ------------------------------------------------------------------------------

    def codecs_encode(self, text: Any, encoding: Any = "utf-8") -> bytes:
        # Protocol-2 pickles write bytes as _codecs.encode(str, 'latin1').
        _check(type(text) is str and encoding == "latin1", "bad encoded bytes")
        self.spend(len(text), "encoded bytes")
        return text.encode("latin1")

    def container(self, items: Any, what: str) -> list:
        _check(type(items) in (list, tuple, set, frozenset), f"a {what} made from a {_kind(items)}")
        self.spend(64 * len(items), f"a {what}")
        return list(items)

    def persistent_obj(self, meta: Any) -> PersistentRecord:
        # torch_utils.persistence would exec meta['module_src'] here; we keep only name and state.
        _check(isinstance(meta, dict) and meta.get("type") == "class", "a persistent object of an unknown kind")
        name, state = meta.get("class_name"), meta.get("state")
        _check(type(name) is str and isinstance(state, dict),
               "a persistent object without a class name (a string) and a state (a dict)")
        _check(0 < len(name) <= 200 and name.isidentifier(), f"a persistent object whose class name is {quote(name)}")
        return PersistentRecord(class_name=name, state=dict(state))


def _functions(load: _Load) -> dict[tuple[str, str], Callable[..., Any]]:
    """Every allowed function name → the function of ``load`` it stands for."""

    def frozenset_(items: Any = ()) -> frozenset:
        return load.unpickler.nest(frozenset(load.container(items, "frozenset")))

    functions: dict[tuple[str, str], Callable[..., Any]] = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): load.persistent_obj,
        ("collections", "OrderedDict"): lambda items=(): dict(load.container(items, "dict")),
        ("torch._utils", "_rebuild_tensor_v2"): load.rebuild_tensor,
        ("torch.storage", "_load_from_bytes"): load.storage_from_blob,
        ("numpy", "dtype"): load.dtype,
        ("_codecs", "encode"): load.codecs_encode,
    }
    # Names that moved between versions: each spelling a supported torch / numpy / pickle protocol writes.
    for name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
        functions["torch._utils", name] = load.rebuild_parameter
    for module in ("torch._tensor", "torch._utils"):
        functions[module, "_rebuild_from_type_v2"] = load.rebuild_from_type
    for core in ("numpy.core", "numpy._core"):  # numpy 2 renamed numpy.core
        functions[f"{core}.multiarray", "scalar"] = load.scalar
        functions[f"{core}.multiarray", "_reconstruct"] = load.reconstruct
        functions[f"{core}.numeric", "_frombuffer"] = load.frombuffer
    for builtins in ("builtins", "__builtin__"):  # protocol <= 3 writes sets this way; protocol 2 as Python 2 names
        functions[builtins, "set"] = lambda items=(): set(load.container(items, "set"))
        functions[builtins, "frozenset"] = frozenset_
    return functions


_NUMPY_ONLY = {("numpy", "dtype"), ("_codecs", "encode"), ("collections", "OrderedDict"),
               *((f"{core}.multiarray", name) for core in ("numpy.core", "numpy._core")
                 for name in ("scalar", "_reconstruct")),
               *((f"{core}.numeric", "_frombuffer") for core in ("numpy.core", "numpy._core")),
               *((b, name) for b in ("builtins", "__builtin__") for name in ("set", "frozenset"))}


def _allowed(load: _Load, numpy_only: bool = False) -> dict[tuple[str, str], Any]:
    functions = _functions(load)
    if numpy_only:
        functions = {key: fn for key, fn in functions.items() if key in _NUMPY_ONLY}
    allowed: dict[tuple[str, str], Any] = {key: _Global(name=".".join(key), fn=fn) for key, fn in functions.items()}
    allowed[("numpy", "ndarray")] = _TypeMarker(name="ndarray")
    if not numpy_only:
        tensor = _TypeMarker(name="Tensor")
        allowed.update({
            ("dnnlib.util", "EasyDict"): EasyDict,
            ("dnnlib", "EasyDict"): EasyDict,
            ("torch", "Tensor"): tensor,
            ("torch._tensor", "Tensor"): tensor,
            ("torch.nn.parameter", "Parameter"): _TypeMarker(name="Parameter"),
        })
    return allowed


def _materialize(root: Any) -> Any:
    """The loaded value with every record turned into what it stands for (tensor, array, numpy scalar or
    dtype); containers are walked at most ``MAX_JSON_DEPTH`` deep, so data that contains itself is refused."""
    done: dict[int, Any] = {}
    keep: list[Any] = []  # originals stay alive, so that no id in ``done`` is reused

    def walk(value: Any, depth: int) -> Any:
        if depth > MAX_JSON_DEPTH:
            raise CorruptPickleError(f"data nested deeper than {MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH), "
                                     "or containing itself")
        if value is None or type(value) in (str, bytes, int, float, bool, complex):
            return value
        if id(value) in done:
            return done[id(value)]
        keep.append(value)
        if isinstance(value, _TensorRecord):
            out = value.build()
        elif isinstance(value, _ScalarRecord):
            out = value.value
        elif isinstance(value, _DtypeRecord):
            out = value.numpy()
        elif isinstance(value, _ArrayRecord):
            _check(value.array is not None, "a numpy array that never got its contents")
            out = value.array
        elif isinstance(value, TFNetworkStub):
            if value.state is not None:
                walk(value.state, depth + 1)
            out = value
        elif isinstance(value, PersistentRecord):
            walk(value.state, depth + 1)
            out = value
        elif isinstance(value, _InertObject):  # torch.save files only (restricted_load_torch_zip / _legacy)
            out = ObjectRecord(class_name=value.class_name, state=walk(value.state or {}, depth + 1))
        elif isinstance(value, dict):  # in place: keys are hashable plain values or records' identities
            for key in list(value):
                _check(key is None or type(key) in (str, bytes, int, float, bool, tuple),
                       f"a dict key that is a {_kind(key)}")
                value[key] = walk(value[key], depth + 1)
            out = value
        elif type(value) is list:
            value[:] = [walk(item, depth + 1) for item in value]
            out = value
        elif type(value) is tuple:
            out = tuple(walk(item, depth + 1) for item in value)
        elif type(value) in (set, frozenset):
            out = type(value)(walk(item, depth + 1) for item in value)
        elif type(value) is bytearray:
            out = value
        else:  # functions, type names, classes, buffers: never data in a network file
            raise CorruptPickleError(f"the pickle stores a {_kind(value)} as a value")
        done[id(value)] = out
        return out

    return walk(root, 0)


def _file_bytes(file: Any) -> int:
    try:
        start = file.tell()
        end = file.seek(0, io.SEEK_END)
        file.seek(start)
        return end - start
    except (AttributeError, OSError, ValueError):
        return 2**40


def _run(file: BinaryIO, source: str, numpy_only: bool = False, tf: bool = False, encoding: str = "ASCII") -> Any:
    load = _Load(source, _file_bytes(file))
    allowed = _allowed(load, numpy_only)
    classes: tuple[type, ...] = () if numpy_only else (EasyDict,)
    if tf:
        allowed[TF_NETWORK_GLOBAL] = TFNetworkStub
        classes += (TFNetworkStub,)
    unpickler = RestrictedUnpickler(_BoundedReader(file), source, allowed, classes=classes, encoding=encoding)
    load.unpickler = unpickler
    return _materialize(unpickler.load())


# --------------------------------------------------------------------------------------------------
# TensorFlow pickles: a tuple of dnnlib.tflib.network.Network objects. Pickle makes each with NEWOBJ and
# hands it its state (a dict: name, kwargs, variables, ...) through BUILD. The real class would exec the
# stored build_module_src there; our stand-in only keeps the dict.

TF_NETWORK_GLOBAL = ("dnnlib.tflib.network", "Network")


def restricted_load_tf(file: BinaryIO, source: str) -> Any:
    """Unpickle a TensorFlow network pickle: the official allow-list plus a stand-in for
    ``dnnlib.tflib.network.Network`` (``TFNetworkStub``)."""
    return _run(file, source, tf=True)


def restricted_load(file: BinaryIO, source: str) -> Any:
    """Unpickle ``file`` with the official allow-list; tensors, arrays and numpy values come back built.

    Raises UnsafePickleError for a global off the list, TensorFlowPickleError for a TF pickle, and
    CorruptPickleError (or pickle's own errors) for malformed data.
    """
    return _run(file, source)


def restricted_load_numpy(file: BinaryIO, source: str, encoding: str = "ASCII") -> Any:
    """Unpickle plain data and numpy values only (e.g. a CIFAR-10 batch, with ``encoding='latin1'``)."""
    return _run(file, source, numpy_only=True, encoding=encoding)


# Errors that malformed pickle data can raise while the unpickler and our allow-listed functions run.
DATA_ERRORS = (CorruptPickleError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
               IndexError, KeyError, OverflowError, RuntimeError, RecursionError, UnicodeDecodeError, struct.error,
               MemoryError)


def one_line(error: BaseException) -> str:
    """An exception's message on one line, cut to a length an error line can carry."""
    if isinstance(error, MemoryError):
        return "it asks for more memory than this machine has"
    text = " ".join(str(error).split())
    text = text or type(error).__name__
    return text if len(text) <= 300 else text[:299] + "…"


def load_pickle_file(path: Path, source: str, load: Callable[[BinaryIO, str], Any] = restricted_load,
                     what: str = "the pickle") -> Any:
    """Open ``path`` and run the restricted ``load`` on it; malformed data becomes one StyleGANError that
    calls the file ``what``."""
    try:
        with open(path, "rb") as f:
            return load(f, source)
    except StyleGANError:
        raise
    except DATA_ERRORS as e:
        raise StyleGANError(f"cannot read {source}: {what} is truncated or corrupt ({one_line(e)})",
                            "download or copy the file again") from None


# --------------------------------------------------------------------------------------------------
# torch.save files, in either of its two formats:
#
# - zip archives (PyTorch >= 1.6's default): ``<root>/data.pkl`` names each tensor storage by a persistent id
#   ('storage', storage type, key, location, numel) whose bytes are the member ``<root>/data/<key>``;
# - legacy files (``_use_new_zipfile_serialization=False``, and every file of PyTorch < 1.6): five pickles in a
#   row (the magic number, the format version 1001, a dict of system facts, the data, whose persistent ids are
#   ('storage', storage type, key, location, numel, view), and the list of storage keys), then for each key
#   in that order its element count as an int64 and its raw bytes.
#
# Training checkpoints also pickle objects of a few known classes beside the weights (INERT_CLASSES): NEWOBJ,
# then one BUILD with a dict of attributes. A stand-in keeps the dict; the object comes back as an ObjectRecord,
# plain data that names its class. Nothing of the real class is imported or run.


@dataclass(frozen=True)
class ObjectRecord:
    """An object a checkpoint pickled (one of ``INERT_CLASSES``): its class and attributes."""

    class_name: str  # e.g. 'argparse.Namespace'
    state: dict[str, Any]


INERT_CLASSES = (
    "argparse.Namespace",  # rosinality train.py's args
    "mmengine.logging.history_buffer.HistoryBuffer",  # mmagic 1.x: message_hub's log scalars (numpy arrays, ints)
)
# Attributes of those classes a pickle may name. HistoryBuffer's state holds its default statistics functions,
# which protocol 2 pickles as getattr(HistoryBuffer, 'min') and protocol 4 as the global 'HistoryBuffer.min';
# each comes back as its dotted name, a string. Any other function (a custom statistic) stays refused.
_INERT_ATTRIBUTES = {"mmengine.logging.history_buffer.HistoryBuffer": ("min", "max", "current", "mean")}


class _InertObject(_Record):
    """The stand-in for an object of one of ``INERT_CLASSES``: NEWOBJ makes it, one BUILD gives it a dict."""

    __slots__ = ("_state",)
    class_name = "object"

    def take_state(self, state: Any) -> None:
        _check(type(state) is dict and all(type(k) is str for k in state),
               f"an {self.class_name} object whose attributes are not a dict of names")
        _check(self.state is None, f"the pickle tries to change an {self.class_name} object")
        self._set("_state", state)

    @property
    def state(self) -> dict[str, Any] | None:
        return getattr(self, "_state", None)


def _inert_stand_in(class_name: str) -> type[_InertObject]:
    return type(f"_Inert_{class_name.rsplit('.', 1)[1]}", (_InertObject,),
                {"__slots__": (), "class_name": class_name, "kind": class_name})


_INERT_STAND_INS = {tuple(name.rsplit(".", 1)): _inert_stand_in(name) for name in INERT_CLASSES}


def _inert_attribute(source: str, owner: Any, name: Any) -> str:
    """``getattr(owner, name)`` as a pickle of an inert class asks for it: the attribute's dotted name."""
    _check(type(name) is str, "the pickle calls getattr with a name that is not a string")
    inert = isinstance(owner, type) and issubclass(owner, _InertObject)
    if not inert or name not in _INERT_ATTRIBUTES.get(owner.class_name, ()):
        owner_name = owner.class_name if inert else _kind(owner)
        error = UnsafePickleError(f"refusing to load {source}: it asks for attribute {quote(name, 60)} of "
                                  f"{owner_name}, which is not on the allow-list", _FIX)
        error.global_name = f"{owner_name}.{name}"
        raise error
    return f"{owner.class_name}.{name}"


def _torch_file_allowed(load: _Load) -> dict[tuple[str, str], Any]:
    """The official allow-list, plus what torch.save files add: storage types, PyTorch < 0.4's tensor
    rebuilder, and the inert classes (with the attributes they may name)."""
    allowed = _allowed(load)
    allowed.update({("torch", name): _TypeMarker(name=name) for name in _STORAGE_DTYPES})
    allowed[("torch._utils", "_rebuild_tensor")] = _Global(name="torch._utils._rebuild_tensor",
                                                           fn=load.rebuild_tensor_v1)
    allowed.update(_INERT_STAND_INS)
    for builtins in ("builtins", "__builtin__"):  # protocol 2 writes getattr under its Python 2 name
        allowed[(builtins, "getattr")] = _Global(name=f"{builtins}.getattr",
                                                 fn=lambda owner, name: _inert_attribute(load.source, owner, name))
    for class_name, names in _INERT_ATTRIBUTES.items():
        module, owner = class_name.rsplit(".", 1)
        allowed.update({(module, f"{owner}.{name}"): f"{class_name}.{name}" for name in names})
    return allowed


def _storage_reference(pid: Any, length: int) -> tuple[torch.dtype, str, int, Any]:
    """(dtype, key, declared element count, view) of a storage's persistent id of ``length`` items; the
    location is ignored (everything comes to the CPU)."""
    _check(type(pid) is tuple and len(pid) == length and pid[0] == "storage", "bad storage reference")
    kind, key, location, numel = pid[1:5]
    _check(isinstance(kind, _TypeMarker) and kind.name in _STORAGE_DTYPES and type(key) is str
           and type(location) is str and type(numel) is int and numel >= 0, "bad storage reference")
    return _STORAGE_DTYPES[kind.name], key, numel, pid[5] if length > 5 else None


def _known_storage(storages: dict[str, _Storage], key: str, dtype: torch.dtype, numel: int) -> _Storage | None:
    """The storage ``key`` if the pickle named it before (declared the same way), else None."""
    known = storages.get(key)
    _check(known is None or (known.dtype == dtype and known.numel == numel),
           f"storage {quote(key)} declared twice, differently")
    return known


def _torch_file_unpickler(file: Any, load: _Load, storage: Callable[[Any], _Storage]) -> RestrictedUnpickler:
    """The unpickler of a torch.save data pickle: the torch-file allow-list, ``storage`` resolving its storages."""
    unpickler = RestrictedUnpickler(file, load.source, _torch_file_allowed(load), persistent=storage,
                                    classes=(EasyDict, *_INERT_STAND_INS.values()))
    load.unpickler = unpickler
    return unpickler


# Reads ``nbytes`` bytes of storage ``key`` (the reader checks them against its member first).
StorageReader = Callable[[str, int], bytes]


def restricted_load_torch_zip(file: BinaryIO, source: str, archive_bytes: int, read_storage: StorageReader) -> Any:
    """Unpickle a torch zip archive's ``data.pkl`` (the torch-file allow-list above). Each storage is read once
    through ``read_storage``, after its size is charged to the budget (twice ``archive_bytes`` plus 64 MiB)."""
    load = _Load(source, archive_bytes)
    storages: dict[str, _Storage] = {}

    def storage(pid: Any) -> _Storage:
        dtype, key, numel, _ = _storage_reference(pid, 5)
        known = _known_storage(storages, key, dtype, numel)
        if known is not None:
            return known
        nbytes = numel * dtype.itemsize
        load.spend(nbytes, "a tensor storage")
        raw = read_storage(key, nbytes)
        _check(len(raw) == nbytes, f"storage {quote(key)} has {len(raw)} bytes, not {nbytes}")
        storages[key] = _Storage(dtype=dtype, numel=numel, flat=_flat(raw, dtype))
        return storages[key]

    return _materialize(_torch_file_unpickler(_BoundedReader(file), load, storage).load())


_LEGACY_HEAD = b"\x8a\x0a" + LEGACY_TORCH_SAVE_MAGIC.to_bytes(10, "little") + b"."  # LONG1 of 10 bytes, STOP


def is_legacy_torch_save(head: bytes) -> bool:
    """Whether a file starting with ``head`` (its first 32 bytes) is a legacy torch.save file: a pickle of
    any protocol (2 by default) whose first value is the magic number."""
    if len(head) < 2 or head[0] != 0x80 or not 2 <= head[1] <= 5:
        return False
    body = head[2:]
    if body[:1] == b"\x95":  # protocol 4+ frames its first pickle: FRAME and an 8-byte length
        body = body[9:]
    return body.startswith(_LEGACY_HEAD)


def _legacy_records(f: _BoundedReader, load: _Load,
                    data_unpickler: Callable[[Callable[[Any], _Storage]], RestrictedUnpickler]) -> Any:
    """The data of a legacy torch.save read from ``f`` (records, not yet materialized), its storages filled.

    ``data_unpickler(storage)`` makes the unpickler of the data pickle, resolving persistent ids through
    ``storage``. That pickle runs with placeholder storages that only record their declared dtype and size
    (nothing of that size is allocated), and tensors are checked against those sizes. Then the key list must
    name exactly those storages, and each storage's element count must repeat its declaration and fit in the
    bytes left in the file (and ``MAX_MEMBER_BYTES``) before its bytes are read and charged to the budget.
    """
    def plain_pickle() -> Any:  # the header pickles and the key list: plain values only, no globals at all
        return RestrictedUnpickler(f, load.source, {}).load()

    magic = plain_pickle()
    _check(type(magic) is int and magic == LEGACY_TORCH_SAVE_MAGIC, "it does not start with torch.save's magic number")
    version = plain_pickle()
    _check(type(version) is int and version == _LEGACY_PROTOCOL,
           f"a torch.save format version {version if type(version) is int else _kind(version)}, not {_LEGACY_PROTOCOL}")
    sys_info = plain_pickle()
    _check(type(sys_info) is dict and sys_info.get("little_endian") is True and sys.byteorder == "little",
           "it was saved on a big-endian machine")
    storages: dict[str, _Storage] = {}

    def storage(pid: Any) -> _Storage:
        dtype, key, numel, view = _storage_reference(pid, 6)
        _check(view is None, "storage views (files of PyTorch < 1.0 that saved slices of storages) are not supported")
        known = _known_storage(storages, key, dtype, numel)
        if known is None:
            known = storages[key] = _Storage(dtype=dtype, numel=numel, flat=None)  # its bytes follow the pickle
        return known

    data = data_unpickler(storage).load()
    keys = plain_pickle()
    _check(type(keys) is list and all(type(k) is str for k in keys) and len(set(keys)) == len(keys)
           and set(keys) == set(storages), f"its list of {len(keys) if type(keys) is list else 'no'} storage keys "
                                           f"does not match the {len(storages)} storages its data names")
    for key in keys:
        s = storages[key]
        nbytes = s.numel * s.dtype.itemsize
        count = int.from_bytes(f.read(8), "little", signed=True)
        _check(count == s.numel, f"storage {quote(key)} holds {count} elements where the data declares {s.numel}")
        # The declared size against the bytes present, before anything of that size exists.
        _check(nbytes <= f.left, f"a storage of {s.numel} elements where the file holds {f.left // s.dtype.itemsize} "
                                 f"(storage {quote(key)})")
        _check(nbytes <= MAX_MEMBER_BYTES, f"storage {quote(key)} declares {nbytes} bytes, over the "
                                           f"{MAX_MEMBER_BYTES}-byte limit for one storage (MAX_MEMBER_BYTES)")
        load.spend(nbytes, "a tensor storage")
        s._set("flat", _flat(f.read_bytearray(nbytes), s.dtype))
    return data


def restricted_load_torch_legacy(file: BinaryIO, source: str) -> Any:
    """Unpickle a legacy (non-zip) torch.save file with the torch-file allow-list above; every declared size
    is checked against the bytes the file holds before it is allocated (``_legacy_records``), within a
    budget of twice the file's size plus 64 MiB. Tensors are built last."""
    f = _BoundedReader(file)
    load = _Load(source, f.size)
    return _materialize(_legacy_records(f, load, lambda storage: _torch_file_unpickler(f, load, storage)))
