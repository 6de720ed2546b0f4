"""Hostile and damaged StyleGAN TFRecords datasets handed to `stylegan dataset --source DIR`.

Each folder is built here from a few lines and converted by the real command under the 4 GiB address-space
cap: every one must end in exit 2 with one ``error:`` line naming the problem, and leave no output behind.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from tests.data.test_tfrecords import (delimited, example_bytes, frame, image_record, int64_list, one_hot, tag,
                                       varint, write_tfrecords)
from tests.hostile.harness import run_refused
from tests.hostile.test_data import leftovers


def refuse(tmp_path: Path, source: Path, expect: str) -> str:
    line = run_refused(["dataset", "--source", str(source), "--dest", "out.zip"], cwd=tmp_path, expect=expect)
    assert leftovers(tmp_path, "out.zip") == []
    return line


def images(n: int = 3, channels: int = 3, size: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, (n, channels, size, size), dtype=np.uint8)


def top_file(folder: Path) -> Path:
    return max(folder.glob("*.tfrecords"), key=lambda p: p.name)


def records_file(folder: Path, *records: bytes, name: str = "d-r03.tfrecords") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"".join(records))
    return folder


GOOD = image_record(images(1)[0])  # one valid 8x8 RGB record payload


# ------------------------------------------------------------------------------------------------ framing


def test_corrupt_length_crc(tmp_path):
    src = records_file(tmp_path / "src", frame(GOOD), frame(GOOD, length_crc=0x12345678))
    refuse(tmp_path, src, "the length of record 1 fails its CRC check")


def test_corrupt_data_crc(tmp_path):
    src = tmp_path / "src"
    write_tfrecords(src, images(4))
    data = bytearray(top_file(src).read_bytes())
    data[-100] ^= 0x01  # one pixel bit of the last record
    top_file(src).write_bytes(bytes(data))
    refuse(tmp_path, src, "the data of record 3 fails its CRC check")


@pytest.mark.parametrize("cut, expect", [
    (-1, "is cut short: record 2 declares"),            # inside the last CRC
    (-150, "is cut short: record 2 declares"),          # inside the last payload
    (6, "ends inside the header of record 0"),
])
def test_truncated_file(tmp_path, cut, expect):
    src = tmp_path / "src"
    write_tfrecords(src, images(3))
    data = top_file(src).read_bytes()
    top_file(src).write_bytes(data[:cut])
    refuse(tmp_path, src, expect)


def test_oversized_declared_length_with_a_valid_crc(tmp_path):
    src = records_file(tmp_path / "src", frame(GOOD, length=2**40))
    refuse(tmp_path, src, "record 0 declares 1099511627776 bytes, over the 1073741824-byte limit for one record")


def test_declared_length_past_the_end(tmp_path):
    src = records_file(tmp_path / "src", frame(GOOD, length=10**8))
    refuse(tmp_path, src, "record 0 declares 100000000 bytes but the file ends")


def test_empty_file(tmp_path):
    src = records_file(tmp_path / "src")
    refuse(tmp_path, src, "holds no records")


# ------------------------------------------------------------------------------------------------ Example


def test_shape_that_does_not_match_the_data(tmp_path):
    bad = example_bytes([3, 8, 8], bytes(3 * 8 * 8 - 1))
    src = records_file(tmp_path / "src", frame(GOOD), frame(bad))
    refuse(tmp_path, src, "record 1 is not an image Example: its shape [3, 8, 8] needs 192 bytes but its data has 191")


def test_huge_shape_is_refused_before_any_allocation(tmp_path):
    bad = example_bytes([3, 2**31, 2**31], bytes(16))
    refuse(tmp_path, records_file(tmp_path / "src", frame(bad)), "-pixel limit for one image")


@pytest.mark.parametrize("wire", [3, 4, 6, 7])
def test_unknown_wire_type(tmp_path, wire):
    bad = example_bytes([3, 8, 8], images(1)[0].tobytes(), extra=tag(5, wire) + b"\0" * 8)
    refuse(tmp_path, records_file(tmp_path / "src", frame(bad)), f"field 5 has wire type {wire}")


def test_field_longer_than_its_message(tmp_path):
    bad = delimited(1, tag(1, 2) + varint(2**62) + b"abc")
    refuse(tmp_path, records_file(tmp_path / "src", frame(bad)), "declares 4611686018427387904 bytes but its message")


def test_runaway_varint(tmp_path):
    refuse(tmp_path, records_file(tmp_path / "src", frame(b"\x08" + b"\xff" * 20)), "a number is longer than 10 bytes")


def test_missing_data_feature(tmp_path):
    only_shape = delimited(1, delimited(1, delimited(1, b"shape") + delimited(2, delimited(3, int64_list([3, 8, 8])))))
    refuse(tmp_path, records_file(tmp_path / "src", frame(only_shape)), "it has no 'data' feature")


def test_feature_given_twice(tmp_path):
    entry = delimited(1, delimited(1, b"shape") + delimited(2, delimited(3, int64_list([3, 8, 8]))))
    payload = example_bytes([3, 8, 8], images(1)[0].tobytes(), extra=entry)
    refuse(tmp_path, records_file(tmp_path / "src", frame(payload)), "feature 'shape' appears twice")


def test_mixed_shapes_in_one_file(tmp_path):
    gray = image_record(images(1, channels=1)[0])
    refuse(tmp_path, records_file(tmp_path / "src", frame(GOOD), frame(GOOD), frame(gray)),
           "record 2 has shape [1, 8, 8] but record 0 has [3, 8, 8]")


def test_non_square_images(tmp_path):
    wide = example_bytes([3, 8, 16], bytes(3 * 8 * 16))
    refuse(tmp_path, records_file(tmp_path / "src", frame(wide)), "record 0 is 16x8")


def test_resolution_other_than_the_file_name_says(tmp_path):
    big = image_record(images(1, size=16)[0])
    refuse(tmp_path, records_file(tmp_path / "src", frame(big)),
           "record 0 is 16x16 and the file name says 8x8")


def test_two_channel_images(tmp_path):
    refuse(tmp_path, records_file(tmp_path / "src", frame(example_bytes([2, 8, 8], bytes(128)))), "has 2 channels")


# ------------------------------------------------------------------------------------------------ folders


def test_folder_with_labels_but_no_tfrecords(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "d-rxx.labels", "wb") as f:
        np.save(f, one_hot([0, 1], 2))
    refuse(tmp_path, src, "holds .labels but no .tfrecords files")


def test_empty_folder_names_tfrecords_among_the_sources(tmp_path):
    (tmp_path / "src").mkdir()
    refuse(tmp_path, tmp_path / "src", "has no images")


def test_two_datasets_in_one_folder(tmp_path):
    src = records_file(tmp_path / "src", frame(GOOD), name="a-r03.tfrecords")
    records_file(src, frame(GOOD), name="b-r03.tfrecords")
    refuse(tmp_path, src, "holds the .tfrecords of more than one dataset ('a', 'b')")


def test_file_not_named_like_the_official_tool(tmp_path):
    refuse(tmp_path, records_file(tmp_path / "src", frame(GOOD), name="train.tfrecords"),
           "'train.tfrecords' is not named like an official dataset file")


# ------------------------------------------------------------------------------------------------- labels


def _labelled(tmp_path: Path, labels_bytes: bytes | None = None, labels: np.ndarray | None = None) -> Path:
    src = tmp_path / "src"
    write_tfrecords(src, images(3), name="d")
    path = src / "d-rxx.labels"
    if labels is not None:
        with open(path, "wb") as f:
            np.save(f, labels)
    else:
        path.write_bytes(labels_bytes)
    return src


def test_labels_for_fewer_images(tmp_path):
    refuse(tmp_path, _labelled(tmp_path, labels=one_hot([0, 1], 2)),
           "has labels for 2 images but the .tfrecords file holds 3")


def test_labels_that_are_not_2d(tmp_path):
    refuse(tmp_path, _labelled(tmp_path, labels=np.zeros(3, dtype=np.float32)), "has shape [3], expected 2-D")


def test_labels_that_are_not_floats(tmp_path):
    refuse(tmp_path, _labelled(tmp_path, labels=np.zeros((3, 2), dtype=np.int64)), "values, expected floats")


def test_labels_file_that_is_a_pickle(tmp_path):
    """An object array in an .npy is a pickle: it must be refused from the header, never unpickled."""
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (3, 1), }"
    header += b" " * (63 - len(header)) + b"\n"
    marker = tmp_path / "ran"
    payload = (b"\x80\x02cos\nsystem\n(X" + f"touch {marker}".encode() + b"\ntR.")
    refuse(tmp_path, _labelled(tmp_path, b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload),
           "holds Python objects")
    assert not marker.exists()


def test_labels_with_a_lying_shape(tmp_path):
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 100000), }"
    header += b" " * (127 - len(header)) + b"\n"
    refuse(tmp_path, _labelled(tmp_path, b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(24)),
           "declares shape [3, 100000] (1200000 bytes) but holds 24 bytes")


def test_labels_that_are_not_npy(tmp_path):
    refuse(tmp_path, _labelled(tmp_path, b"PK\x03\x04 not an array"), "is not an .npy array")


def test_labels_that_are_not_finite(tmp_path):
    labels = one_hot([0, 1, 0], 2)
    labels[1, 0] = np.nan
    refuse(tmp_path, _labelled(tmp_path, labels=labels), "holds values that are not finite numbers")
