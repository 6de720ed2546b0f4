"""StyleGAN (v1) TFRecords datasets, read without TensorFlow or protobuf.

The original StyleGAN release stores a dataset as a folder of ``<name>-rNN.tfrecords`` files, one per
resolution 2**NN from r02 up to the full size, each holding every image once, plus an optional
``<name>-rxx.labels``: a NumPy ``.npy`` array of float32 labels ``[N, C]`` (one-hot for class datasets),
row i belonging to image i. Only the highest resolution is needed; the others are box-filtered copies.

A ``.tfrecords`` file is a stream of records, each framed as

    uint64 little-endian length | uint32 masked CRC32C of those 8 bytes | payload | uint32 masked CRC32C of it

and each payload is a serialized ``tf.train.Example`` whose feature map has ``shape`` (Int64List, the image's
[C, H, W]) and ``data`` (BytesList with one value, the uint8 pixels in CHW order).

Safe by construction: every declared length is checked against the bytes present and
``stylegan.limits`` before anything is read into memory; both CRCs of every record are verified; the
protobuf reader below knows only the few message types an Example has (fixed nesting, no recursion) and
refuses wire types an Example never uses; the labels file is parsed as an .npy header (a Python literal
of numbers and strings) and raw floats, never unpickled.
"""

from __future__ import annotations

import functools
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np

from stylegan.data.archives import read_exactly, read_npy_header
from stylegan.data.labels import Label
from stylegan.errors import StyleGANError
from stylegan.limits import MAX_CLASSES, MAX_IMAGE_PIXELS, MAX_JSON_BYTES, MAX_MEMBER_BYTES, MAX_RESOLUTION, quote

TFRECORDS_FIX = "re-create the .tfrecords files with the official dataset_tool.py, or copy them again"
LABELS_FIX = "use the <name>-rxx.labels written together with the .tfrecords files: float32 [images, labels]"
NAMING = "<name>-rNN.tfrecords"
MAX_RECORD_BYTES = MAX_MEMBER_BYTES  # one record (real: 3 MB for a 1024x1024 RGB image)
MAX_LABEL_VALUES = MAX_JSON_BYTES // 8  # label values a dataset.json can hold within its size limit
CHANNEL_COUNTS = (1, 3, 4)  # the official tool writes 1 or 3; our datasets take RGBA too

_FILE_NAME = re.compile(r"^(?P<prefix>.+)-r(?P<log2>\d{2})\.tfrecords$")
_HEADER = struct.Struct("<QI")  # record length, masked CRC32C of the length's 8 bytes
_CRC = struct.Struct("<I")


# ---------------------------------------------------------------------------------------------------------
# CRC32C (Castagnoli, reflected polynomial 0x82F63B78, init and final XOR 0xFFFFFFFF: RFC 3720)

_POLY = 0x82F63B78
_MASK_DELTA = 0xA282EAD8  # TFRecord's constant added to the rotated CRC
_U32 = 0xFFFFFFFF


def _byte_table() -> np.ndarray:
    """The 256-entry table of the reflected byte-at-a-time update: the register after shifting in byte b."""
    table = []
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ (_POLY if c & 1 else 0)
        table.append(c)
    return np.array(table, dtype=np.uint32)


_TABLE = _byte_table()
_TABLE_LIST = [int(v) for v in _TABLE]
_SHORT = 256  # inputs up to this many bytes take the plain loop
_MAX_LANES = 16384


def _register_after_loop(register: int, data: bytes | memoryview) -> int:
    """The raw CRC register after ``data``, one byte at a time (for short inputs)."""
    table = _TABLE_LIST
    for b in bytes(data):
        register = table[(register ^ b) & 0xFF] ^ (register >> 8)
    return register


# The register update is linear over GF(2): after any message, register = Z_n(start) XOR R(message), where
# Z_n is the effect of n zero bytes and R(message) the register from a zero start. So a long input is cut
# into K equal lanes whose zero-start registers are computed side by side with NumPy, and the lanes are
# then folded pairwise: a left lane moves past its right neighbour's length by Z_len and XORs into it.
# A linear map of 32 bits is held as four 256-entry tables, one per byte of the input.


def _apply(op: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The linear map ``op`` (uint32 [4, 256]) applied to uint32 ``values`` (any shape)."""
    return (op[0][values & 0xFF] ^ op[1][(values >> 8) & 0xFF] ^ op[2][(values >> 16) & 0xFF]
            ^ op[3][values >> 24])


@functools.lru_cache(maxsize=64)
def _zeros_op(count: int) -> np.ndarray:
    """Z_count: the register map of ``count`` zero bytes, as uint32 [4, 256] tables (built by squaring)."""
    if count == 0:
        identity = np.arange(256, dtype=np.uint32)
        return np.stack([identity << np.uint32(8 * j) for j in range(4)])
    if count == 1:
        b = np.arange(256, dtype=np.uint32)  # one zero byte: low byte through the table, the rest shifted down
        return np.stack([_TABLE, b, b << np.uint32(8), b << np.uint32(16)])
    half = _zeros_op(count // 2)
    op = _apply(half, half)  # Z_a∘Z_a = Z_2a, applied entry by entry
    return _apply(_zeros_op(1), op) if count % 2 else op


def _register_from_zero(data: np.ndarray) -> int:
    """The raw register after ``data`` (uint8 [L], L > _SHORT) from a zero start, computed in lanes."""
    lanes = min(_MAX_LANES, 1 << ((len(data) // 16).bit_length() - 1))  # about 16+ bytes a lane
    width = -(-len(data) // lanes)
    padded = np.zeros(lanes * width, dtype=np.uint8)  # zeros in front leave a zero-start register at zero
    padded[len(padded) - len(data):] = data
    columns = padded.reshape(lanes, width).T.copy()  # one row per step, one column per lane
    registers = np.zeros(lanes, dtype=np.uint32)
    for column in columns:
        registers = _TABLE[(registers ^ column) & 0xFF] ^ (registers >> 8)
    while len(registers) > 1:
        registers = _apply(_zeros_op(width), registers[0::2]) ^ registers[1::2]
        width *= 2
    return int(registers[0])


def crc32c(data: bytes | bytearray | memoryview) -> int:
    """CRC32C of ``data`` (RFC 3720): ``crc32c(b"123456789") == 0xE3069283``."""
    if len(data) <= _SHORT:
        return _register_after_loop(_U32, data) ^ _U32
    start = int(_apply(_zeros_op(len(data)), np.array(_U32, dtype=np.uint32)))
    return start ^ _register_from_zero(np.frombuffer(data, dtype=np.uint8)) ^ _U32


def mask_crc(crc: int) -> int:
    """TFRecord's masked CRC: rotated right by 15 bits plus 0xA282EAD8, modulo 2**32."""
    return ((((crc >> 15) | (crc << 17)) & _U32) + _MASK_DELTA) & _U32


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    return mask_crc(crc32c(data))


# ---------------------------------------------------------------------------------------------------------
# Protobuf wire format: just enough for tf.train.Example

class MalformedExample(ValueError):
    """A record's payload is not a well-formed Example; the message is a short reason."""


_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5
_FIXED_SIZES = {_FIXED64: 8, _FIXED32: 4}
FieldValue = Union[int, memoryview]


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """(value, next position) of the varint at ``pos``: at most 10 bytes, within ``buf``."""
    value = shift = 0
    for _ in range(10):
        if pos >= len(buf):
            raise MalformedExample("a number runs past the end of its message")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
    raise MalformedExample("a number is longer than 10 bytes")


def _fields(buf: memoryview) -> Iterator[tuple[int, int, FieldValue]]:
    """(field number, wire type, value) of each field of one message: an int, or a view of its bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise MalformedExample("a field has number 0")
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _LENGTH:
            size, pos = _varint(buf, pos)
            if size > len(buf) - pos:
                raise MalformedExample(f"field {number} declares {size} bytes but its message has "
                                       f"{len(buf) - pos} left")
            value, pos = buf[pos:pos + size], pos + size
        elif wire in _FIXED_SIZES:
            size = _FIXED_SIZES[wire]
            if size > len(buf) - pos:
                raise MalformedExample(f"field {number} runs past the end of its message")
            value, pos = int.from_bytes(buf[pos:pos + size], "little"), pos + size
        else:  # 3 and 4 are the long-deprecated groups, 6 and 7 do not exist
            raise MalformedExample(f"field {number} has wire type {wire}, which an Example never uses")
        yield number, wire, value


def _only(wire: int, expected: int, what: str) -> None:
    if wire != expected:
        raise MalformedExample(f"{what} has wire type {wire}, expected {expected}")


@dataclass
class Feature:
    """One entry of an Example's feature map: which list it holds and its values."""

    kind: str                                        # 'bytes_list', 'float_list', 'int64_list' or 'empty'
    values: list = field(default_factory=list)       # memoryviews, or ints (floats are counted, not read)


_LIST_KINDS = {1: "bytes_list", 2: "float_list", 3: "int64_list"}


def _feature(buf: memoryview) -> Feature:
    """tf.train.Feature: a oneof of BytesList (1), FloatList (2), Int64List (3), each ``repeated value = 1``."""
    feature = Feature("empty")
    for number, wire, value in _fields(buf):
        kind = _LIST_KINDS.get(number)
        if kind is None:
            continue  # an unknown field: skipped, as protobuf does
        _only(wire, _LENGTH, kind)
        feature = Feature(kind)  # a later member of the oneof replaces an earlier one
        for inner, inner_wire, item in _fields(value):
            if inner == 1:
                feature.values.extend(_list_items(kind, inner_wire, item))
    return feature


def _list_items(kind: str, wire: int, item: FieldValue) -> list:
    """The values one ``value`` field adds: one bytes string, or one number or a packed run of them."""
    if kind == "bytes_list":
        _only(wire, _LENGTH, "a bytes value")
        return [item]
    if kind == "int64_list":
        if wire == _VARINT:
            return [_signed(item)]
        _only(wire, _LENGTH, "a packed int64 list")
        numbers, pos = [], 0
        while pos < len(item):
            number, pos = _varint(item, pos)
            numbers.append(_signed(number))
        return numbers
    if wire == _FIXED32:
        return [None]
    _only(wire, _LENGTH, "a packed float list")
    if len(item) % 4:
        raise MalformedExample("a packed float list is not a whole number of floats")
    return [None] * (len(item) // 4)


def _signed(value: int) -> int:
    """An int64 stored as a 64-bit two's-complement varint."""
    return value - (1 << 64) if value >= 1 << 63 else value


def parse_example(payload: bytes | bytearray | memoryview) -> dict[str, Feature]:
    """A serialized tf.train.Example → ``{feature name: Feature}`` (bytes values are views into ``payload``).

    Example: ``Features features = 1``; Features: ``map<string, Feature> feature = 1``, each map entry a
    message of ``key = 1`` and ``value = 2``. A name given twice is refused (protobuf would keep the last).
    """
    features: dict[str, Feature] = {}
    for number, wire, features_msg in _fields(memoryview(payload)):
        if number != 1:
            continue
        _only(wire, _LENGTH, "the features")
        for entry_number, entry_wire, entry in _fields(features_msg):
            if entry_number != 1:
                continue
            _only(entry_wire, _LENGTH, "a feature map entry")
            name, feature = _map_entry(entry)
            if name in features:
                raise MalformedExample(f"feature {quote(name, 40)} appears twice")
            features[name] = feature
    return features


def _map_entry(entry: memoryview) -> tuple[str, Feature]:
    name, feature = "", Feature("empty")
    for number, wire, value in _fields(entry):
        if number == 1:
            _only(wire, _LENGTH, "a feature name")
            try:
                name = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedExample("a feature name is not UTF-8") from None
        elif number == 2:
            _only(wire, _LENGTH, "a feature value")
            feature = _feature(value)
    return name, feature


def image_from_example(features: dict[str, Feature]) -> tuple[tuple[int, int, int], memoryview]:
    """The ``shape`` ([C, H, W]) and ``data`` (C*H*W uint8 bytes) of an official dataset Example.

    The shape is checked (positive, within the pixel limit, matching the data's length) before the caller
    makes an array of the bytes.
    """
    shape, data = features.get("shape"), features.get("data")
    if shape is None or data is None:
        missing = " and ".join(repr(n) for n in ("shape", "data") if features.get(n) is None)
        raise MalformedExample(f"it has no {missing} feature (an official dataset record has both)")
    if shape.kind != "int64_list" or len(shape.values) != 3:
        raise MalformedExample(f"its 'shape' is a {shape.kind} of {len(shape.values)} values, expected 3 integers "
                               "(channels, height, width)")
    if data.kind != "bytes_list" or len(data.values) != 1:
        raise MalformedExample(f"its 'data' is a {data.kind} of {len(data.values)} values, expected one bytes value")
    c, h, w = shape.values
    if not (0 < c and 0 < h <= MAX_RESOLUTION and 0 < w <= MAX_RESOLUTION) or h * w > MAX_IMAGE_PIXELS:
        raise MalformedExample(f"its shape {[c, h, w]} is not a [channels, height, width] within the "
                               f"{MAX_IMAGE_PIXELS}-pixel limit for one image")
    if c not in CHANNEL_COUNTS:
        raise MalformedExample(f"its shape {[c, h, w]} has {c} channels, expected 1 (grayscale), 3 (RGB) or 4 (RGBA)")
    pixels = data.values[0]
    if len(pixels) != c * h * w:
        raise MalformedExample(f"its shape {[c, h, w]} needs {c * h * w} bytes but its data has {len(pixels)}")
    return (c, h, w), pixels


# ---------------------------------------------------------------------------------------------------------
# Record framing


def _header(head: bytes, where: str, index: int) -> int:
    """The payload length of record ``index`` from its 12-byte header, after checking the length's CRC."""
    length, stored = _HEADER.unpack(head)
    if masked_crc32c(head[:8]) != stored:
        raise StyleGANError(f"{where}: the length of record {index} fails its CRC check (the file is damaged)",
                            TFRECORDS_FIX)
    if length > MAX_RECORD_BYTES:
        raise StyleGANError(f"{where}: record {index} declares {length} bytes, over the {MAX_RECORD_BYTES}-byte "
                            "limit for one record", TFRECORDS_FIX)
    return length


def count_records(path: Path, where: str) -> int:
    """How many records ``path`` holds, after checking every record's header (length and its CRC) and that
    the file ends exactly after the last record. Payloads are skipped, not read."""
    size = path.stat().st_size
    pos = count = 0
    with open(path, "rb") as f:
        while pos < size:
            head = f.read(_HEADER.size)
            if len(head) < _HEADER.size:
                raise StyleGANError(f"{where} is cut short: it ends inside the header of record {count}",
                                    TFRECORDS_FIX)
            length = _header(head, where, count)
            end = pos + _HEADER.size + length + _CRC.size
            if end > size:
                raise StyleGANError(f"{where} is cut short: record {count} declares {length} bytes but the file "
                                    f"ends {size - pos - _HEADER.size} bytes after its header", TFRECORDS_FIX)
            pos = end
            f.seek(pos)
            count += 1
    return count


def iter_payloads(path: Path, where: str) -> Iterator[bytearray]:
    """Each record's payload, in order, after checking both CRCs (lengths bounded as in :func:`count_records`)."""
    with open(path, "rb") as f:
        index = 0
        while True:
            head = f.read(_HEADER.size)
            if not head:
                return
            if len(head) < _HEADER.size:
                raise StyleGANError(f"{where} is cut short: it ends inside the header of record {index}",
                                    TFRECORDS_FIX)
            length = _header(head, where, index)
            payload = read_exactly(f, length)
            tail = f.read(_CRC.size)
            if payload is None or len(tail) < _CRC.size:
                raise StyleGANError(f"{where} is cut short: it ends inside record {index}", TFRECORDS_FIX)
            if masked_crc32c(payload) != _CRC.unpack(tail)[0]:
                raise StyleGANError(f"{where}: the data of record {index} fails its CRC check (the file is damaged)",
                                    TFRECORDS_FIX)
            yield payload
            index += 1


# ---------------------------------------------------------------------------------------------------------
# The labels file (.npy)

def read_labels_file(path: Path, count: int) -> np.ndarray:
    """The float labels ``[count, C]`` (the file's float type, native byte order) of an official
    ``-rxx.labels`` file, checked against the number of images before the array is read."""
    where = str(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        dtype, shape, fortran, _ = read_npy_header(f, lambda reason: StyleGANError(f"{where} {reason}", LABELS_FIX))
        if dtype.kind != "f" or dtype.fields is not None or dtype.subdtype is not None:
            raise StyleGANError(f"{where} holds {quote(str(dtype), 40)} values, expected floats", LABELS_FIX)
        if len(shape) != 2:
            raise StyleGANError(f"{where} has shape {list(shape)}, expected 2-D [images, labels]", LABELS_FIX)
        if shape[0] != count:
            raise StyleGANError(f"{where} has labels for {shape[0]} images but the .tfrecords file holds {count}",
                                "use the labels file made together with these .tfrecords files")
        if shape[1] > MAX_CLASSES:
            raise StyleGANError(f"{where} has {shape[1]} values per label, over the limit of {MAX_CLASSES}",
                                LABELS_FIX)
        nbytes = shape[0] * shape[1] * dtype.itemsize
        present = size - f.tell()
        if nbytes != present:
            raise StyleGANError(f"{where} declares shape {list(shape)} ({nbytes} bytes) but holds {present} bytes "
                                "of data", LABELS_FIX)
        if nbytes > MAX_MEMBER_BYTES:
            raise StyleGANError(f"{where} holds {nbytes} bytes, over the {MAX_MEMBER_BYTES}-byte limit", LABELS_FIX)
        body = read_exactly(f, nbytes)
    if body is None:
        raise StyleGANError(f"{where} is cut short", LABELS_FIX)
    flat = np.frombuffer(body, dtype=dtype)
    labels = flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
    return labels.astype(dtype.newbyteorder("="), copy=False)


def labels_as_records(labels: np.ndarray, where: str) -> tuple[list[Label], list[str]]:
    """Label rows → dataset.json labels: class integers when every row is one-hot (what the official tool
    writes for class datasets), otherwise float vectors; and notes for the user."""
    notes: list[str] = []
    if labels.shape[1] == 0:
        return [], notes
    if not np.isfinite(labels).all():
        raise StyleGANError(f"{where} holds values that are not finite numbers", LABELS_FIX)
    one_hot = bool(((labels == 0) | (labels == 1)).all() and (labels.sum(axis=1) == 1).all())
    if one_hot:
        classes = labels.argmax(axis=1)
        used = int(classes.max()) + 1 if len(classes) else 0
        if used < labels.shape[1]:
            notes.append(f"{Path(where).name} has {labels.shape[1]} classes but only 0..{used - 1} occur, so the "
                         f"dataset's labels have {used} classes")
        return [int(c) for c in classes], notes
    if labels.size > MAX_LABEL_VALUES:
        raise StyleGANError(f"{where} holds {labels.size} label values that are not one-hot, more than a "
                            f"dataset.json can hold within its {MAX_JSON_BYTES}-byte limit", LABELS_FIX)
    return [[float(v) for v in row] for row in labels], notes


# ---------------------------------------------------------------------------------------------------------
# A dataset folder


@dataclass
class TFRecordsDataset:
    """The file to read (the highest resolution), how many images it holds, and their labels."""

    path: Path
    count: int
    resolution: Optional[int]          # from the file name (2**NN), or None when the name does not say
    labels: Optional[list[Label]]
    notes: list[str] = field(default_factory=list)

    def images(self) -> Iterator[np.ndarray]:
        """Each image as uint8 ``[H, W]`` (grayscale) or ``[H, W, C]``, in file order; every record must have
        the same square shape (the one the file name says)."""
        where = str(self.path)
        first: Optional[tuple[int, int, int]] = None
        for index, payload in enumerate(iter_payloads(self.path, where)):
            if index >= self.count:  # the first pass counted fewer: labels would no longer line up
                raise StyleGANError(f"{where} grew while it was being read", "convert it again once it is complete")
            try:
                shape, pixels = image_from_example(parse_example(payload))
            except MalformedExample as e:
                raise StyleGANError(f"{where}: record {index} is not an image Example: {e}", TFRECORDS_FIX) from None
            c, h, w = shape
            if first is None:
                if h != w or (self.resolution is not None and h != self.resolution):
                    named = f" and the file name says {self.resolution}x{self.resolution}" if self.resolution else ""
                    raise StyleGANError(f"{where}: record {index} is {w}x{h}{named}; a StyleGAN dataset holds "
                                        "square images of one size per file", TFRECORDS_FIX)
                first = shape
            elif shape != first:
                raise StyleGANError(f"{where}: record {index} has shape {list(shape)} but record 0 has "
                                    f"{list(first)}; every image of one file must have the same shape", TFRECORDS_FIX)
            chw = np.frombuffer(pixels, dtype=np.uint8).reshape(shape)
            yield chw[0].copy() if c == 1 else np.ascontiguousarray(chw.transpose(1, 2, 0))


def holds_tfrecords(folder: Path) -> bool:
    """Whether a folder looks like an official TFRecords dataset (some *.tfrecords or *-rxx.labels in it)."""
    return any((p.suffix == ".tfrecords" or p.name.endswith("-rxx.labels")) and p.is_file() for p in folder.iterdir())


def _highest_resolution_file(folder: Path) -> tuple[Path, int, list[str]]:
    """The ``<name>-rNN.tfrecords`` with the largest NN in ``folder``, that NN, and notes."""
    files = sorted(p for p in folder.iterdir() if p.suffix == ".tfrecords" and p.is_file())
    if not files:
        raise StyleGANError(f"{folder} holds .labels but no .tfrecords files",
                            f"point at the folder holding the {NAMING} files")
    named = [(p, _FILE_NAME.match(p.name)) for p in files]
    odd = [p.name for p, m in named if m is None]
    if odd:
        raise StyleGANError(f"{folder}: {quote(odd[0])} is not named like an official dataset file ({NAMING}), so "
                            "its resolution is unknown", "rename it, or point at the file itself")
    prefixes = sorted({m["prefix"] for _, m in named})
    if len(prefixes) > 1:
        raise StyleGANError(f"{folder} holds the .tfrecords of more than one dataset ({quote(prefixes[0], 40)}, "
                            f"{quote(prefixes[1], 40)})", "give each dataset a folder of its own")
    path, match = max(named, key=lambda pm: int(pm[1]["log2"]))
    log2 = int(match["log2"])
    if not 2 <= log2 <= MAX_RESOLUTION.bit_length() - 1:
        raise StyleGANError(f"{folder}: {path.name} names resolution 2**{log2}, outside 4..{MAX_RESOLUTION}",
                            TFRECORDS_FIX)
    notes = []
    if len(files) > 1:
        notes.append(f"read {path.name}, the highest of {len(files)} resolutions; the others are not needed")
    return path, log2, notes


def _labels_path(folder: Path, prefix: Optional[str]) -> tuple[Optional[Path], list[str]]:
    """``<prefix>-rxx.labels`` if present, else the first ``*.labels`` (as the official loader picks)."""
    if prefix is not None and (folder / f"{prefix}-rxx.labels").is_file():
        return folder / f"{prefix}-rxx.labels", []
    others = sorted(p for p in folder.iterdir() if p.suffix == ".labels" and p.is_file())
    if not others:
        return None, []
    return others[0], [f"took the labels from {others[0].name}"]


def open_tfrecords_dataset(path: Path) -> TFRecordsDataset:
    """An official TFRecords dataset: a folder of ``<name>-rNN.tfrecords`` (the highest NN is read), or one
    ``.tfrecords`` file; labels from ``<name>-rxx.labels`` beside it. Every record header is checked and the
    labels are matched to the image count here, before anything is written."""
    if path.is_dir():
        file, log2, notes = _highest_resolution_file(path)
        resolution: Optional[int] = 2 ** log2
    else:
        file, notes = path, []
        match = _FILE_NAME.match(path.name)
        resolution = 2 ** int(match["log2"]) if match and 4 <= 2 ** int(match["log2"]) <= MAX_RESOLUTION else None
    match = _FILE_NAME.match(file.name)
    count = count_records(file, str(file))
    if count == 0:
        raise StyleGANError(f"{file} holds no records", TFRECORDS_FIX)
    labels_path, label_notes = _labels_path(file.parent, match["prefix"] if match else None)
    labels = None
    if labels_path is not None:
        labels, more = labels_as_records(read_labels_file(labels_path, count), str(labels_path))
        notes += label_notes + more
        if not labels:
            labels = None
            notes.append(f"{labels_path.name} has no label columns; the dataset is unlabeled")
    return TFRecordsDataset(file, count, resolution, labels, notes)
