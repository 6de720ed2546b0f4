"""StyleGAN (v1) TFRecords datasets → our ZIP: CRC32C, the record framing, the Example encoding, pixels and labels.

The TFRecords files are written here the way the official dataset_tool.py writes them: one file per
resolution r02..rNN (each level the 2x2 average of the one above, rounded), every record framed as
uint64 length, masked CRC32C of it, the serialized tf.train.Example, masked CRC32C of that; labels saved
with np.save as float32 [N, C]. The CRC and protobuf encoders below are written from the specifications
(RFC 3720's CRC32C, bit by bit; protobuf's wire format) and are themselves checked against the RFC's test
vectors, TensorBoard's record writer and the protobuf library where those are installed.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from stylegan.data import convert_dataset
from stylegan.data.tfrecords import crc32c, mask_crc, masked_crc32c, parse_example

# ------------------------------------------------------------------------------------- the test's writer


def crc32c_bitwise(data: bytes) -> int:
    """CRC32C from its definition (RFC 3720): reflected polynomial 0x82F63B78, init and final XOR all ones."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc: int) -> int:
    """TFRecord's masking: rotate right by 15 bits, add 0xA282EAD8, modulo 2**32."""
    rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    return (rotated + 0xA282EAD8) % 2**32


def frame(payload: bytes, length_crc: int | None = None, data_crc: int | None = None,
          length: int | None = None) -> bytes:
    """One TFRecord: the CRCs and the length may be overridden to make damaged files."""
    head = struct.pack("<Q", len(payload) if length is None else length)
    length_crc = masked(crc32c_bitwise(head)) if length_crc is None else length_crc
    data_crc = masked(crc32c_bitwise(payload)) if data_crc is None else data_crc
    return head + struct.pack("<I", length_crc) + payload + struct.pack("<I", data_crc)


def varint(n: int) -> bytes:
    n &= 2**64 - 1  # int64 values are encoded as their 64-bit two's complement
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def delimited(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


def int64_list(values, packed: bool = True) -> bytes:
    """tf.train.Int64List (``repeated int64 value = 1``, packed as TensorFlow writes it)."""
    if packed:
        return delimited(1, b"".join(varint(v) for v in values))
    return b"".join(tag(1, 0) + varint(v) for v in values)


def bytes_list(values) -> bytes:
    return b"".join(delimited(1, v) for v in values)


def example_bytes(shape, data: bytes, packed: bool = True, order=("shape", "data"), extra: bytes = b"") -> bytes:
    """A serialized tf.train.Example with features ``shape`` (Int64List) and ``data`` (BytesList).

    Feature: oneof bytes_list = 1, float_list = 2, int64_list = 3. Features: map<string, Feature> feature = 1
    (each entry a message of key = 1, value = 2). Example: Features features = 1.
    """
    features = {"shape": delimited(3, int64_list(shape, packed)), "data": delimited(1, bytes_list([data]))}
    entries = b"".join(delimited(1, delimited(1, name.encode()) + delimited(2, features[name])) for name in order)
    return delimited(1, entries + extra)


def image_record(chw: np.ndarray, **kwargs) -> bytes:
    return example_bytes(list(chw.shape), chw.tobytes(), **kwargs)


def half_size(chw: np.ndarray) -> np.ndarray:
    """The official tool's next lower level: the mean of each 2x2 block (float), as float."""
    x = chw.astype(np.float64)
    return (x[:, 0::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 0::2] + x[:, 1::2, 1::2]) * 0.25


def write_tfrecords(folder: Path, images: np.ndarray, labels: np.ndarray | None = None,
                    name: str | None = None) -> dict[int, list[np.ndarray]]:
    """Official multi-resolution files for uint8 ``images`` [N, C, R, R]: ``<name>-rNN.tfrecords`` for each
    resolution 4..R, and ``<name>-rxx.labels`` when ``labels`` is given. Returns {log2 res: CHW images}."""
    folder.mkdir(parents=True, exist_ok=True)
    name = name or folder.name
    top = int(np.log2(images.shape[2]))
    levels: dict[int, list[np.ndarray]] = {}
    for img in images:
        level = img.astype(np.float64)
        for log2 in range(top, 1, -1):
            if log2 != top:
                level = half_size(level)
            levels.setdefault(log2, []).append(np.rint(level).clip(0, 255).astype(np.uint8))
    for log2, level_images in levels.items():
        with open(folder / f"{name}-r{log2:02d}.tfrecords", "wb") as f:
            for chw in level_images:
                f.write(frame(image_record(chw)))
    if labels is not None:
        with open(folder / f"{name}-rxx.labels", "wb") as f:
            np.save(f, np.asarray(labels, dtype=np.float32))  # the official file: float32 [N, C]
    return levels


def one_hot(classes, count: int) -> np.ndarray:
    out = np.zeros((len(classes), count), dtype=np.float32)
    out[np.arange(len(classes)), classes] = 1
    return out


def read_zip(path: Path) -> tuple[list[np.ndarray], dict]:
    """The images of a dataset ZIP in name order (HWC or HW uint8) and its parsed dataset.json."""
    with zipfile.ZipFile(path) as z:
        names = sorted(n for n in z.namelist() if n.endswith(".png"))
        images = [np.asarray(PIL.Image.open(io.BytesIO(z.read(n)))) for n in names]
        return images, json.loads(z.read("dataset.json"))


def hwc(chw: np.ndarray) -> np.ndarray:
    return chw[0] if chw.shape[0] == 1 else chw.transpose(1, 2, 0)


# ------------------------------------------------------------------------------------------------- CRC32C


RFC3720_VECTORS = [  # RFC 3720, appendix B.4, and the common check value of "123456789"
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (b"123456789", 0xE3069283),
]


@pytest.mark.parametrize("data, expected", RFC3720_VECTORS)
def test_crc32c_matches_the_rfc_test_vectors(data, expected):
    assert crc32c_bitwise(data) == expected  # the test's own reference is right
    assert crc32c(data) == expected


@pytest.mark.parametrize("size", [0, 1, 7, 256, 257, 1000, 4096, 4097, 12345, 65536 + 3])
def test_crc32c_of_long_inputs_matches_the_definition(size):
    """Long inputs take the lane-parallel path; every split point and padding must give the bitwise CRC."""
    data = np.random.RandomState(size).bytes(size)
    assert crc32c(data) == crc32c_bitwise(data)


def test_masking_formula_by_hand():
    assert mask_crc(0) == 0xA282EAD8
    assert mask_crc(1) == 0x00020000 + 0xA282EAD8           # bit 0 rotated right by 15 lands on bit 17
    assert mask_crc(0x8000) == 0x00000001 + 0xA282EAD8      # bit 15 lands on bit 0
    assert mask_crc(0xFFFFFFFF) == (0xFFFFFFFF + 0xA282EAD8) - 2**32  # wraps modulo 2**32
    for crc in (0x12345678, 0xE3069283, 0xDEADBEEF):
        assert mask_crc(crc) == masked(crc)


def test_masked_crc_matches_tensorboards_record_writer():
    """TensorBoard writes TFRecord event files with its own CRC32C; its framing must equal ours byte for byte."""
    record_writer = pytest.importorskip("tensorboard.summary.writer.record_writer")
    payload = np.random.RandomState(1).bytes(5000)
    buf = io.BytesIO()
    record_writer.RecordWriter(buf).write(payload)
    assert buf.getvalue() == frame(payload)
    assert masked_crc32c(payload) == struct.unpack("<I", buf.getvalue()[-4:])[0]


# --------------------------------------------------------------------------------------------- Example


def _example_class():
    """tf.train.Example built with the protobuf library from its schema (feature.proto, example.proto)."""
    descriptor_pb2 = pytest.importorskip("google.protobuf.descriptor_pb2")
    from google.protobuf import descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="stylegan_test_example.proto", package="sgtest", syntax="proto3")

    def message(name, fields, nested=()):
        msg = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name, oneof in fields:
            f = msg.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                f.type_name = type_name
            if oneof is not None:
                f.oneof_index = oneof
        for nested_msg in nested:
            msg.nested_type.add().CopyFrom(nested_msg)
        return msg

    rep, opt = F.LABEL_REPEATED, F.LABEL_OPTIONAL
    message("BytesList", [("value", 1, F.TYPE_BYTES, rep, None, None)])
    message("FloatList", [("value", 1, F.TYPE_FLOAT, rep, None, None)])
    message("Int64List", [("value", 1, F.TYPE_INT64, rep, None, None)])
    feature = message("Feature", [("bytes_list", 1, F.TYPE_MESSAGE, opt, ".sgtest.BytesList", 0),
                                  ("float_list", 2, F.TYPE_MESSAGE, opt, ".sgtest.FloatList", 0),
                                  ("int64_list", 3, F.TYPE_MESSAGE, opt, ".sgtest.Int64List", 0)])
    feature.oneof_decl.add(name="kind")
    entry = descriptor_pb2.DescriptorProto(name="FeatureEntry")
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=opt)
    entry.field.add(name="value", number=2, type=F.TYPE_MESSAGE, label=opt, type_name=".sgtest.Feature")
    entry.options.map_entry = True
    message("Features", [("feature", 1, F.TYPE_MESSAGE, rep, ".sgtest.Features.FeatureEntry", None)], [entry])
    message("Example", [("features", 1, F.TYPE_MESSAGE, opt, ".sgtest.Features", None)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("sgtest.Example"))


def test_example_encoding_agrees_with_the_protobuf_library():
    Example = _example_class()
    chw = np.random.RandomState(2).randint(0, 256, (3, 8, 8), dtype=np.uint8)
    # our test writer's bytes, read by the protobuf library
    parsed = Example.FromString(image_record(chw))
    assert list(parsed.features.feature["shape"].int64_list.value) == [3, 8, 8]
    assert parsed.features.feature["data"].bytes_list.value[0] == chw.tobytes()
    # the protobuf library's bytes, read by our reader
    ex = Example()
    ex.features.feature["shape"].int64_list.value.extend([3, 8, 8])
    ex.features.feature["data"].bytes_list.value.append(chw.tobytes())
    ex.features.feature["ignored"].float_list.value.extend([0.5, 2.0])
    features = parse_example(ex.SerializeToString())
    assert features["shape"].values == [3, 8, 8]
    assert bytes(features["data"].values[0]) == chw.tobytes()
    assert features["ignored"].kind == "float_list" and len(features["ignored"].values) == 2


def test_example_reader_takes_unpacked_lists_any_order_and_unknown_fields():
    unknown = tag(7, 0) + varint(300) + tag(8, 5) + b"\0\0\0\0" + tag(9, 1) + bytes(8) + delimited(10, b"xyz")
    payload = example_bytes([1, 4, 4], bytes(range(16)), packed=False, order=("data", "shape"), extra=unknown)
    features = parse_example(payload + unknown)
    assert features["shape"].values == [1, 4, 4]
    assert bytes(features["data"].values[0]) == bytes(range(16))
    assert parse_example(example_bytes([-1, 2, 3], b""))["shape"].values == [-1, 2, 3]  # int64 two's complement


# ---------------------------------------------------------------------------------------- the conversion


def test_rgb_dataset_with_labels_converts_with_identical_pixels(tmp_path):
    rng = np.random.RandomState(3)
    images = rng.randint(0, 256, (7, 3, 32, 32), dtype=np.uint8)
    classes = [3, 0, 9, 3, 1, 2, 9]
    levels = write_tfrecords(tmp_path / "cifar", images, one_hot(classes, 10))
    assert sorted(p.name for p in (tmp_path / "cifar").iterdir()) == [
        "cifar-r02.tfrecords", "cifar-r03.tfrecords", "cifar-r04.tfrecords", "cifar-r05.tfrecords",
        "cifar-rxx.labels"]
    assert len(levels[2]) == 7 and levels[2][0].shape == (3, 4, 4)

    report = convert_dataset(tmp_path / "cifar", tmp_path / "out.zip", progress=False)
    assert (report.count, report.resolution, report.channels) == (7, 32, 3)
    assert (report.source_kind, report.label_kind, report.label_dim) == ("tfrecords", "classes", 10)
    assert any("cifar-r05.tfrecords, the highest of 4 resolutions" in n for n in report.notes)
    out, meta = read_zip(tmp_path / "out.zip")
    assert len(out) == 7
    for got, want in zip(out, images):
        assert got.dtype == np.uint8 and np.array_equal(got, hwc(want))
    assert [label for _, label in meta["labels"]] == classes
    assert [name for name, _ in meta["labels"]] == [f"00000/img{i:08d}.png" for i in range(7)]


def test_grayscale_dataset_without_labels(tmp_path):
    images = np.random.RandomState(4).randint(0, 256, (5, 1, 16, 16), dtype=np.uint8)
    write_tfrecords(tmp_path / "mnist", images)
    report = convert_dataset(tmp_path / "mnist", tmp_path / "out.zip", progress=False)
    assert (report.count, report.resolution, report.channels, report.label_kind) == (5, 16, 1, None)
    out, meta = read_zip(tmp_path / "out.zip")
    assert meta == {"labels": None}
    for got, want in zip(out, images):
        assert got.shape == (16, 16) and np.array_equal(got, want[0])


def test_label_vectors_that_are_not_one_hot_stay_vectors(tmp_path):
    images = np.random.RandomState(5).randint(0, 256, (3, 3, 8, 8), dtype=np.uint8)
    labels = np.array([[0.25, -1.5], [1.0, 0.0], [0.1, 0.2]], dtype=np.float32)
    write_tfrecords(tmp_path / "d", images, labels)
    report = convert_dataset(tmp_path / "d", tmp_path / "out.zip", progress=False)
    assert (report.label_kind, report.label_dim) == ("vectors", 2)
    _, meta = read_zip(tmp_path / "out.zip")
    got = np.array([label for _, label in meta["labels"]], dtype=np.float64)
    assert np.array_equal(got, labels.astype(np.float64))  # float32 values survive exactly


def test_unused_trailing_classes_are_noted(tmp_path):
    images = np.random.RandomState(6).randint(0, 256, (3, 1, 4, 4), dtype=np.uint8)
    write_tfrecords(tmp_path / "d", images, one_hot([0, 2, 1], 5))
    report = convert_dataset(tmp_path / "d", tmp_path / "out.zip", progress=False)
    assert report.label_dim == 3 and any("has 5 classes but only 0..2 occur" in n for n in report.notes)


def test_one_lower_resolution_file_can_be_given_directly(tmp_path):
    """The official lower levels (2x2 means, rounded) are what the r04 file holds, and what comes out."""
    images = np.random.RandomState(7).randint(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    levels = write_tfrecords(tmp_path / "d", images, one_hot([1, 0, 1, 1], 2))
    report = convert_dataset(tmp_path / "d" / "d-r04.tfrecords", tmp_path / "out.zip", progress=False)
    assert (report.count, report.resolution, report.label_dim) == (4, 16, 2)
    out, meta = read_zip(tmp_path / "out.zip")
    for got, img, want in zip(out, images, levels[4]):
        assert np.array_equal(got, hwc(want))
        box = img.astype(np.float64).reshape(3, 16, 2, 16, 2).mean(axis=(2, 4))  # independent 2x2 mean
        assert np.array_equal(hwc(np.rint(box).astype(np.uint8)), got)
    assert [label for _, label in meta["labels"]] == [1, 0, 1, 1]


def test_max_images_and_resize_work_as_for_other_sources(tmp_path):
    images = np.random.RandomState(8).randint(0, 256, (6, 3, 16, 16), dtype=np.uint8)
    write_tfrecords(tmp_path / "d", images, one_hot([0, 1, 2, 0, 1, 2], 3))
    report = convert_dataset(tmp_path / "d", tmp_path / "out.zip", max_images=2, resolution=(8, 8), progress=False)
    assert (report.count, report.resolution) == (2, 8)


def test_command_line_conversion(tmp_path):
    from click.testing import CliRunner

    from stylegan.cli.dataset import dataset

    images = np.random.RandomState(9).randint(0, 256, (3, 3, 8, 8), dtype=np.uint8)
    write_tfrecords(tmp_path / "ffhq", images)
    result = CliRunner().invoke(dataset, ["--source", str(tmp_path / "ffhq"), "--dest", str(tmp_path / "o.zip"),
                                          "--quiet"])
    assert result.exit_code == 0, result.output
    assert "wrote 3 images (8x8, 3 channels, no labels)" in result.output
    out, _ = read_zip(tmp_path / "o.zip")
    assert all(np.array_equal(g, hwc(w)) for g, w in zip(out, images))
    assert not os.path.exists(tmp_path / "ffhq" / "dataset.json")


def test_labels_in_big_endian_or_fortran_order_read_the_same(tmp_path):
    images = np.random.RandomState(10).randint(0, 256, (3, 1, 4, 4), dtype=np.uint8)
    labels = np.array([[0.5, 1.5], [2.0, -3.0], [0.0, 0.25]], dtype=np.float32)
    for kind, stored in [("big", labels.astype(">f8")), ("fortran", np.asfortranarray(labels))]:
        folder = tmp_path / kind
        write_tfrecords(folder, images)
        with open(folder / f"{kind}-rxx.labels", "wb") as f:
            np.save(f, stored)
        convert_dataset(folder, tmp_path / f"{kind}.zip", progress=False)
        _, meta = read_zip(tmp_path / f"{kind}.zip")
        assert np.array_equal(np.array([label for _, label in meta["labels"]]), labels.astype(np.float64)), kind
