"""Bad input to the dataset tool: one-line StyleGANErrors, and nothing half-written left behind."""

from __future__ import annotations

import errno
import gzip
import os
import re
import sys
import tarfile
import tempfile
import zipfile

import numpy as np
import pytest

import stylegan.data.tool as tool_module
from stylegan.data import convert_dataset, parse_resolution
from stylegan.data.sources import open_source
from stylegan.data.transforms import Transform
from stylegan.data.writer import DatasetWriter
from stylegan.errors import StyleGANError

from .conftest import idx_bytes, make_image_folder, make_mnist, random_image, save_image, write_labels


def fails(match: str, *args, **kwargs) -> StyleGANError:
    """convert_dataset(*args, **kwargs) must raise a one-line StyleGANError matching ``match``."""
    kwargs.setdefault("progress", False)
    with pytest.raises(StyleGANError, match=match) as info:
        convert_dataset(*args, **kwargs)
    assert "\n" not in str(info.value) and info.value.fix, str(info.value)
    return info.value


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix in (".zip", ".tmp"))


def test_missing_source(tmp_path):
    fails("does not exist", tmp_path / "nope", tmp_path / "out.zip")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    fails("has no images", tmp_path / "empty", tmp_path / "out.zip")
    assert leftovers(tmp_path) == []


def test_empty_zip(tmp_path):
    with zipfile.ZipFile(tmp_path / "empty.zip", "w"):
        pass
    fails("has no images", tmp_path / "empty.zip", tmp_path / "out.zip")


def test_unknown_file_kind(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n")
    fails("unknown kind of file", tmp_path / "data.csv", tmp_path / "out.zip")
    (tmp_path / "broken.zip").write_bytes(b"PK not really")
    fails("not a readable ZIP", tmp_path / "broken.zip", tmp_path / "out.zip")


def test_tar_that_is_not_cifar(tmp_path):
    with tarfile.open(tmp_path / "other.tar.gz", "w:gz") as tar:
        tar.add(__file__, arcname="x.py")
    fails("not the CIFAR-10 python tarball", tmp_path / "other.tar.gz", tmp_path / "out.zip")


def test_damaged_mnist(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x09\x03" + bytes(20)))
    fails("not an idx file", path, tmp_path / "out.zip")
    images_path, images, _ = make_mnist(tmp_path / "m", n=3)
    (tmp_path / "m" / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(2, np.uint8))))
    fails("has 3 images but train-labels-idx1-ubyte.gz has 2 labels", images_path, tmp_path / "out.zip")


def test_mixed_sizes(tmp_path, rng):
    save_image(tmp_path / "src" / "a.png", random_image(rng, 16, 16))
    save_image(tmp_path / "src" / "b.png", random_image(rng, 32, 32))
    err = fails(r"b.png is 32x32 but a.png is 16x16", tmp_path / "src", tmp_path / "out.zip")
    assert err.fix == ("give resolution (--resolution) "
                       "(and set transform (--transform) to center-crop for non-square images)")
    assert leftovers(tmp_path) == []


def test_mixed_channels(tmp_path, rng):
    save_image(tmp_path / "src" / "a.png", random_image(rng, 8, 8, 3))
    save_image(tmp_path / "src" / "b.png", random_image(rng, 8, 8, 1))
    err = fails(r"b.png has 1 channel\(s\) but a.png has 3", tmp_path / "src", tmp_path / "out.zip")
    assert "set channels (--channels) to 3" in err.fix


@pytest.mark.parametrize("h, w, match", [(24, 24, "power-of-two"), (16, 32, "not square"), (2, 2, "power-of-two")])
def test_bad_image_sizes(tmp_path, rng, h, w, match):
    save_image(tmp_path / "src" / "a.png", random_image(rng, h, w))
    fails(match, tmp_path / "src", tmp_path / "out.zip")


@pytest.mark.parametrize("kwargs, match", [
    (dict(resolution=(48, 48)), "power-of-two"),
    (dict(resolution=(64, 32)), "not square"),
    (dict(transform="center-crop"), "needs an output size"),
    (dict(transform="center-crop-wide", resolution=(32, 64)), "taller than wide"),
    (dict(transform="center-crop-wide", resolution=(48, 32)), "power-of-two"),
    (dict(max_images=0), "leaves nothing"),
    (dict(channels=2), "not supported"),
])
def test_bad_options_fail_before_any_work(tmp_path, kwargs, match):
    make_image_folder(tmp_path / "src", n=1)
    fails(match, tmp_path / "src", tmp_path / "out.zip", **kwargs)
    assert leftovers(tmp_path) == []


def test_all_images_too_small_for_center_crop_wide(tmp_path, rng):
    save_image(tmp_path / "src" / "a.png", random_image(rng, 8, 8))
    fails("no images to write", tmp_path / "src", tmp_path / "out.zip", transform="center-crop-wide",
          resolution=(16, 8))


def test_corrupt_images_abort_by_default_and_are_counted(tmp_path):
    make_image_folder(tmp_path / "src", n=5)
    (tmp_path / "src" / "img02.png").write_bytes(b"not a png at all")
    (tmp_path / "src" / "sub" / "img03.png").write_bytes(b"")
    err = fails(r"2 of 5 images could not be read \(img02.png: .*sub/img03.png", tmp_path / "src",
                tmp_path / "out.zip")
    assert "turn on skip_bad (--skip-bad) to leave them out" in err.fix
    assert leftovers(tmp_path) == []


def test_corrupt_count_respects_max_images(tmp_path):
    make_image_folder(tmp_path / "src", n=5)
    (tmp_path / "src" / "img00.png").write_bytes(b"junk")
    fails(r"1 of 2 images", tmp_path / "src", tmp_path / "out.zip", max_images=2)


def test_all_images_corrupt_with_skip_bad(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.png").write_bytes(b"junk")
    fails("none could be read", tmp_path / "src", tmp_path / "out.zip", skip_bad=True)


@pytest.mark.parametrize("labels, match", [
    ([["img00.png", 0]], r"5 of 6 image\(s\) have no label \(first: img02.png\)"),
    ([], "have no label"),
    ([["img00.png", 0], ["img02.png", [1.0, 2.0]]], "labels are inconsistent"),
    ([["img00.png", [1.0]], ["img02.png", [1.0, 2.0]]], "labels are inconsistent"),
    ([["img00.png", -1]], "negative class"),
    ([["img00.png", 0.5]], "not a class index"),
    ([["img00.png", "cat"]], "label of img00.png"),
    ([["img00.png", 1], ["img00.png", 2]], "labelled twice"),
    ([["img00.png"]], "not a \\[name, label\\] pair"),
    ({"img00.png": 1}, "must be a list"),
])
def test_dataset_json_that_does_not_match(tmp_path, labels, match):
    make_image_folder(tmp_path / "src", n=6, labels=False)
    write_labels(tmp_path / "src", labels)
    fails(match, tmp_path / "src", tmp_path / "out.zip")


def test_dataset_json_that_is_not_json(tmp_path):
    make_image_folder(tmp_path / "src", n=1, labels=False)
    (tmp_path / "src" / "dataset.json").write_text("{labels: oops")
    fails("not valid JSON", tmp_path / "src", tmp_path / "out.zip")
    (tmp_path / "src" / "dataset.json").write_text("[]")
    fails('no "labels" entry', tmp_path / "src", tmp_path / "out.zip")


def test_labels_for_files_that_are_gone_are_ignored(tmp_path):
    make_image_folder(tmp_path / "src", n=2, labels=False)
    write_labels(tmp_path / "src", [["img00.png", 1], ["sub/img01.png", 2], ["deleted.png", 0]])
    assert convert_dataset(tmp_path / "src", tmp_path / "out.zip", progress=False).count == 2


def test_unwritable_dest(tmp_path):
    make_image_folder(tmp_path / "src", n=1)
    (tmp_path / "file").write_text("a file, not a folder")
    fails(r"cannot write dest \(--dest\)", tmp_path / "src", tmp_path / "file" / "out.zip")
    fails(r"cannot write dest \(--dest\)", tmp_path / "src", tmp_path / "file" / "sub" / "out")


@pytest.mark.parametrize("dest", ["out.zip", "out"])
def test_read_only_dest_folder(tmp_path, monkeypatch, dest):
    # A read-only file system refuses even root, which ignores folder modes: make the temporary file or
    # folder that every write starts with fail there as it would (EROFS), and only there.
    make_image_folder(tmp_path / "src", n=1)
    (tmp_path / "ro").mkdir()

    def read_only(real):
        def make(*args, dir=None, **kwargs):
            if dir is not None and os.path.samefile(dir, tmp_path / "ro"):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))
            return real(*args, dir=dir, **kwargs)
        return make

    monkeypatch.setattr(tempfile, "mkstemp", read_only(tempfile.mkstemp))
    monkeypatch.setattr(tempfile, "mkdtemp", read_only(tempfile.mkdtemp))
    error = fails(r"cannot write dest \(--dest\)", tmp_path / "src", tmp_path / "ro" / dest)
    assert os.strerror(errno.EROFS) in str(error) and "writable dest (--dest)" in error.fix
    assert list((tmp_path / "ro").iterdir()) == []


def test_dest_folder_must_be_empty(tmp_path):
    make_image_folder(tmp_path / "src", n=1)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("precious")
    fails("not empty", tmp_path / "src", tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "precious"


def test_dest_zip_is_not_replaced_without_overwrite(tmp_path):
    make_image_folder(tmp_path / "src", n=1)
    (tmp_path / "out.zip").write_bytes(b"precious")
    fails("already exists", tmp_path / "src", tmp_path / "out.zip")
    assert (tmp_path / "out.zip").read_bytes() == b"precious"


def test_dest_is_an_existing_file_or_folder_of_the_wrong_kind(tmp_path):
    make_image_folder(tmp_path / "src", n=1)
    (tmp_path / "out.zip").mkdir()
    fails("is a folder", tmp_path / "src", tmp_path / "out.zip")
    (tmp_path / "notes.txt").write_text("x")
    fails("existing file and not a .zip", tmp_path / "src", tmp_path / "notes.txt")


@pytest.mark.parametrize("dest", ["out.zip", "out"])
def test_interrupted_run_leaves_nothing_and_keeps_the_old_dataset(tmp_path, monkeypatch, dest):
    make_image_folder(tmp_path / "src", n=4)
    convert_dataset(tmp_path / "src", tmp_path / "old.zip", progress=False)
    before = (tmp_path / "old.zip").read_bytes()
    calls = []
    real = tool_module.encode_png

    def interrupt_on_third(arr):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(arr)

    monkeypatch.setattr(tool_module, "encode_png", interrupt_on_third)
    target = "old.zip" if dest == "out.zip" else "new" + "/" + dest
    with pytest.raises(KeyboardInterrupt):
        convert_dataset(tmp_path / "src", tmp_path / target, overwrite=True, progress=False)
    assert (tmp_path / "old.zip").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.zip", "src"]  # no temp file, no 'new' folder


def test_missing_optional_packages_are_named(tmp_path, monkeypatch):
    (tmp_path / "cat_lmdb").mkdir()
    monkeypatch.setitem(sys.modules, "lmdb", None)
    fails("needs the 'lmdb' package", tmp_path / "cat_lmdb", tmp_path / "out.zip")
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    fails("needs scikit-learn", "sklearn-digits", tmp_path / "out.zip")


# ----------------------------------------------------------------------------------------- Python callers
# The library is also called from Python, where settings are arguments, not flags: every message that
# names a setting names it both ways, ``python_name (--flag)``.


def test_open_source_names_the_source_argument(tmp_path):
    with pytest.raises(StyleGANError) as info:
        open_source(tmp_path / "nope")
    assert str(info.value).startswith(f"source (--source) {tmp_path / 'nope'} does not exist (give a folder of")


def test_transform_names_its_settings():
    with pytest.raises(StyleGANError) as info:
        Transform("center-crop")
    assert str(info.value) == ("transform (--transform) center-crop needs an output size "
                               "(also give resolution (--resolution), e.g. 256x256)")
    with pytest.raises(StyleGANError, match=r"^unknown resize_filter \(--resize-filter\) 'bicubic' \(use one of"):
        Transform(None, (8, 8), "bicubic")
    with pytest.raises(StyleGANError, match=r"^resolution \(--resolution\) is 48x48; StyleGAN needs a power-of-two"):
        Transform(None, (48, 48))
    with pytest.raises(StyleGANError, match=r"^resolution \(--resolution\) 'big' is not WIDTHxHEIGHT"):
        parse_resolution("big")


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_images=0), ("max_images (--max-images) is 0, which leaves nothing to write "
                          "(give at least 1, or leave it out (None) for all)")),
    (dict(channels=2), ("channels (--channels) is 2, which is not supported "
                        "(use 1 (grayscale), 3 (RGB) or 4 (RGBA), or leave it out (None))")),
])
def test_convert_dataset_names_its_arguments(tmp_path, kwargs, message):
    make_image_folder(tmp_path / "src", n=1)
    fails("^" + re.escape(message) + "$", tmp_path / "src", tmp_path / "out.zip", **kwargs)


def test_too_small_for_center_crop_wide_names_the_settings(tmp_path, rng):
    save_image(tmp_path / "src" / "a.png", random_image(rng, 8, 8))
    err = fails(r"^source \(--source\) .*: no images to write", tmp_path / "src", tmp_path / "out.zip",
                transform="center-crop-wide", resolution=(16, 8))
    assert err.fix == "use a smaller resolution (--resolution) or another transform (--transform)"


def test_dataset_writer_names_dest_and_overwrite(tmp_path):
    (tmp_path / "out.zip").write_bytes(b"precious")
    with pytest.raises(StyleGANError) as info:
        DatasetWriter(tmp_path / "out.zip")
    assert str(info.value) == (f"dest (--dest) {tmp_path / 'out.zip'} already exists "
                               "(choose a new name, or turn on overwrite (--overwrite) to replace it)")
    with pytest.raises(StyleGANError, match=r"^dest \(--dest\) is empty"):
        DatasetWriter("")


def test_pyspng_path_checks_the_size_before_decoding(monkeypatch):
    """The fast PNG decoder gets no bomb: the size in the IHDR is checked first."""
    import struct
    import types
    import zlib

    import stylegan.data.images as images

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">L", len(body)) + kind + body + struct.pack(">L", zlib.crc32(kind + body))

    giant = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">2L5B", 100_000, 100_000, 8, 0, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(bytes(100))) + chunk(b"IEND", b"")
    monkeypatch.setattr(images, "pyspng", types.SimpleNamespace(load=lambda data: pytest.fail("decoded a bomb")))
    with pytest.raises(images.ImageTooLarge, match="100000x100000 pixels, over the"):
        images.decode_hwc(giant)


def test_mnist_header_is_checked_against_the_bytes_present(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((3, 4, 4), np.uint8)) + b"extra")
    fails("holds 53 bytes of data but its header says", path, tmp_path / "out.zip")
    path.write_bytes(bytes([0, 0, 8, 3]) + b"".join((2**31).to_bytes(4, "big") for _ in range(3)))
    fails(r"\(9903520314283042199192993792 bytes\), over the 1073741824-byte limit", path, tmp_path / "out.zip")
    gz = tmp_path / "t10k-images-idx3-ubyte.gz"
    gz.write_bytes(b"\x1f\x8b" + b"not really gzip")
    fails("cannot read", gz, tmp_path / "out.zip")
    assert leftovers(tmp_path) == []


def test_labels_are_bounded(tmp_path):
    make_image_folder(tmp_path / "src", n=2, labels=False)
    for labels, match in [([["img00.png", 10**12], ["sub/img01.png", 0]], "over the limit of 100000 classes"),
                          ([["img00.png", [0.0] * 100_001], ["sub/img01.png", [0.0] * 100_001]],
                           "vector of 100001 numbers, over the limit of 100000"),
                          ([["img00.png", [10**400]], ["sub/img01.png", [1]]], "labels must be class integers")]:
        write_labels(tmp_path / "src", labels)
        fails(match, tmp_path / "src", tmp_path / "out.zip")
    assert leftovers(tmp_path) == []


def test_fake_cifar_tarball_is_called_a_broken_download(tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(b"\x1f\x8b" + bytes(30))  # a gzip cut short
    error = fails("is named like the CIFAR-10 archive but is not a valid one", path, tmp_path / "out.zip")
    assert "unknown kind" not in str(error) and "cifar-10-python.tar.gz again" in error.fix
