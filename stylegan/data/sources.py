"""Inputs of the dataset tool: folders and ZIPs of images, CIFAR-10, MNIST, LSUN LMDB, StyleGAN TFRecords,
sklearn digits.

:func:`open_source` guesses the format from the path and returns a :class:`Source`: its length, whether
it has labels, and an iterator of :class:`SourceImage` in a fixed order. Nothing is decoded until an
item's ``read()`` is called, so a corrupt file is one failed item rather than a failed source.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Union

import numpy as np
import PIL.Image

from stylegan.data.archives import DamagedMember, open_zip, read_exactly, read_member, read_member_or_fail
from stylegan.data.images import is_image_name, open_image
from stylegan.data.labels import LABELS_FILE, Label, cut, match_labels, parse_labels_json
from stylegan.data.tfrecords import holds_tfrecords, open_tfrecords_dataset
from stylegan.errors import StyleGANError, UnsafePickleError, setting
from stylegan.formats.unpickler import DATA_ERRORS as PICKLE_DATA_ERRORS
from stylegan.formats.unpickler import one_line, restricted_load_numpy
from stylegan.limits import MAX_JSON_BYTES, MAX_MEMBER_BYTES, quote

SKLEARN_DIGITS = "sklearn-digits"
CIFAR10_MEMBER = "cifar-10-batches-py/data_batch_{}"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_CIFAR_NAME = re.compile(r"cifar.*\.(tar|tgz|tar\.gz|tar\.bz2|tar\.xz)$", re.IGNORECASE)
CIFAR_BATCH_BYTES = 64 * 2**20  # one pickled batch (real: 31 MB, 10,000 images of 3,072 bytes)
MAX_TAR_MEMBERS = 1000  # members looked at in a tarball (the CIFAR-10 tarball has 8)
SOURCE_FORMS = ("a folder of images, a .zip of images, cifar-10-python.tar.gz, "
                "an MNIST *-images-idx3-ubyte(.gz) file, an LSUN *_lmdb folder, "
                "a folder of StyleGAN *-rNN.tfrecords, or sklearn-digits")
SOURCE = setting("source")  # how messages name the input: the Python argument and the dataset command's flag

Decoded = Union[PIL.Image.Image, np.ndarray]  # arrays are uint8 [H, W] or [H, W, C]


@dataclass
class SourceImage:
    name: str                       # where it came from, for messages (path, archive member, index)
    label: Label | None
    read: Callable[[], Decoded]     # decodes on demand; raises on a corrupt file


@dataclass
class Source:
    kind: str                       # 'folder', 'zip', 'cifar10', 'mnist', 'lsun', 'tfrecords', 'sklearn-digits'
    path: str
    count: int
    labeled: bool
    iterate: Callable[[], Iterator[SourceImage]] = field(repr=False)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[SourceImage]:
        return self.iterate()


def open_source(source: str | os.PathLike) -> Source:
    """Guess the format of ``source`` and open it; StyleGANError for a missing, unknown or empty source."""
    text = os.fspath(source)
    if text == SKLEARN_DIGITS:
        return open_sklearn_digits()
    path = Path(text)
    if not path.exists():
        raise StyleGANError(f"{SOURCE} {text} does not exist", f"give {SOURCE_FORMS}")
    if path.is_dir():
        if (path / "data.mdb").is_file() or path.name.endswith("_lmdb"):
            src = open_lmdb(path)
        elif holds_tfrecords(path):
            src = open_tfrecords(path)
        else:
            src = open_image_folder(path)
    elif path.suffix == ".tfrecords":
        src = open_tfrecords(path)
    elif _is_idx_images(path):
        src = open_mnist(path)
    elif zipfile.is_zipfile(path):
        src = open_image_zip(path)
    elif path.suffix.lower() == ".zip":
        raise StyleGANError(f"{SOURCE} {text} is not a readable ZIP", "check or re-create the archive")
    elif _is_tar(path):
        src = open_cifar10(path)
    elif _CIFAR_NAME.search(path.name):
        raise StyleGANError(f"{SOURCE} {text} is named like the CIFAR-10 archive but is not a valid one "
                            "(not a readable tar archive; perhaps the download was cut short or is an error page)",
                            f"download {CIFAR10_URL} again")
    else:
        raise StyleGANError(f"{SOURCE} {text}: unknown kind of file", f"give {SOURCE_FORMS}")
    if src.count == 0:
        raise StyleGANError(f"{SOURCE} {text} has no images (looked for PNG, JPEG, WebP, BMP and other image files)",
                            f"point {SOURCE} at a folder or archive that contains images")
    return src


def _is_tar(path: Path) -> bool:
    """Whether ``path`` (maybe gzip, bzip2 or xz compressed) starts with a valid tar header. Only the first
    block is looked at (``tarfile.is_tarfile`` would read a first member's long-name payload whole)."""
    try:
        with _decompressed(path) as f:
            block = f.read(tarfile.BLOCKSIZE)
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        return True
    except Exception:  # noqa: BLE001 - OSError, EOFError, zlib/lzma errors, header errors: not a readable tar
        return False


class _CappedReads(io.RawIOBase):
    """A decompressed tarball for :mod:`tarfile` that refuses any single read over ``limit`` bytes.

    tarfile reads a GNU long name or a pax header in one piece of the size its header declares: a small
    compressed file could make that gigabytes. Members themselves are checked before they are read.
    """

    def __init__(self, stream: BinaryIO, limit: int):
        super().__init__()
        self._stream, self._limit = stream, limit

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > self._limit:
            raise DamagedMember(f"a tar header asks for {size} bytes, over the {self._limit}-byte limit")
        return self._stream.read(size)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()


def _decompressed(path: Path) -> BinaryIO:
    """``path`` as a stream of tar bytes: gzip, bzip2 and xz are decompressed as they are read."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(path)
    if magic[:3] == b"BZh":
        import bz2
        return bz2.BZ2File(path)
    if magic == b"\xfd7zXZ\x00":
        import lzma
        return lzma.LZMAFile(path)
    return open(path, "rb")


# ---------------------------------------------------------------------------------------------------------
# Folders and ZIPs of images


def _labels_for(names: list[str], labels_text: bytes | None, where: str) -> list[Label] | None:
    if labels_text is None:
        return None
    labels = parse_labels_json(labels_text, where)
    return None if labels is None else match_labels(labels, names, where)


def open_image_folder(root: Path) -> Source:
    """Every image under ``root`` (recursively), sorted by path components; labels from root/dataset.json."""
    rel = []
    for p in root.rglob("*"):
        r = p.relative_to(root).as_posix()
        if is_image_name(r) and p.is_file():
            rel.append(r)
    rel.sort(key=lambda r: r.split("/"))
    meta = root / LABELS_FILE
    if meta.is_file() and meta.stat().st_size > MAX_JSON_BYTES:
        raise StyleGANError(f"{meta} is {meta.stat().st_size} bytes, over the {MAX_JSON_BYTES}-byte limit",
                            "labels for 1.28 M images take about 40 MB; check the file")
    labels = _labels_for(rel, meta.read_bytes() if meta.is_file() else None, str(meta))

    def iterate() -> Iterator[SourceImage]:
        for i, name in enumerate(rel):
            yield SourceImage(name, labels[i] if labels else None,
                              lambda name=name: open_image((root / name).read_bytes()))

    return Source("folder", str(root), len(rel), labels is not None, iterate)


def open_image_zip(path: Path) -> Source:
    """Every image member of a ZIP, sorted by name; labels from its top-level dataset.json.

    Refuses repeated member names; members are inflated only up to their declared size and the limits.
    """
    fix = "check or re-create the archive"
    with open_zip(path, f"{SOURCE} {path}", fix) as z:
        names = sorted(n for n in z.namelist() if is_image_name(n))
        labels_text = read_member_or_fail(z, LABELS_FILE, f"{path}:{LABELS_FILE}", fix, MAX_JSON_BYTES) \
            if LABELS_FILE in z.namelist() else None
    labels = _labels_for(names, labels_text, f"{path}:{LABELS_FILE}")

    def iterate() -> Iterator[SourceImage]:
        with open_zip(path, f"{SOURCE} {path}", fix) as z:
            for i, name in enumerate(names):
                yield SourceImage(name, labels[i] if labels else None,
                                  lambda name=name: open_image(read_member(z, name)))

    return Source("zip", str(path), len(names), labels is not None, iterate)


# ---------------------------------------------------------------------------------------------------------
# LSUN


def open_lmdb(path: Path) -> Source:
    """An LSUN LMDB folder: every value is an encoded image (WebP for LSUN), in key order; no labels."""
    try:
        import lmdb
    except ImportError:
        raise StyleGANError(f"{SOURCE} {path} is an LMDB database, which needs the 'lmdb' package",
                            "pip install lmdb, or stylegan[lsun]") from None

    def open_env():
        try:
            return lmdb.open(str(path), readonly=True, lock=False, readahead=False, max_readers=1)
        except lmdb.Error as e:
            raise StyleGANError(f"{SOURCE} {path} is not a readable LMDB database ({e})",
                                f"point {SOURCE} at an LSUN *_lmdb folder with data.mdb in it") from None

    env = open_env()
    try:
        count = env.stat()["entries"]
    finally:
        env.close()

    def iterate() -> Iterator[SourceImage]:
        env = open_env()
        try:
            with env.begin(write=False) as txn:
                for key, value in txn.cursor():
                    name = key.decode("utf-8", errors="replace")
                    yield SourceImage(name, None, lambda value=value: open_image(bytes(value)))
        finally:
            env.close()

    return Source("lsun", str(path), count, False, iterate)


# ---------------------------------------------------------------------------------------------------------
# StyleGAN (v1) TFRecords


def open_tfrecords(path: Path) -> Source:
    """The official StyleGAN multi-resolution TFRecords (a folder, or one .tfrecords file): the highest
    resolution's images with labels from the -rxx.labels file (see stylegan.data.tfrecords)."""
    dataset = open_tfrecords_dataset(path)
    labels = dataset.labels

    def iterate() -> Iterator[SourceImage]:
        for i, image in enumerate(dataset.images()):
            yield SourceImage(f"{dataset.path.name}[{i}]", labels[i] if labels else None, lambda image=image: image)

    return Source("tfrecords", str(dataset.path), dataset.count, labels is not None, iterate, dataset.notes)


# ---------------------------------------------------------------------------------------------------------
# CIFAR-10


_CIFAR_FIX = "use the original cifar-10-python.tar.gz"


def _unpickle_cifar_batch(data: bytes, where: str) -> object:
    """A CIFAR-10 batch read by the shared restricted unpickler: plain data and numpy arrays only, built by
    our code from the bytes the batch holds (nothing in the file can run, or drive what it is handed)."""
    try:
        return restricted_load_numpy(io.BytesIO(data), where, encoding="latin1")
    except UnsafePickleError as e:
        name = getattr(e, "global_name", "a global")
        raise StyleGANError(f"{where} asks for {quote(name)}, which is not allowed in a CIFAR-10 batch",
                            _CIFAR_FIX) from None
    except StyleGANError as e:
        raise StyleGANError(f"{where} is not a CIFAR-10 python batch ({e.what})", _CIFAR_FIX) from None
    except PICKLE_DATA_ERRORS as e:
        raise StyleGANError(f"{where} is not a CIFAR-10 python batch ({one_line(e)})", _CIFAR_FIX) from None


def _load_cifar_batch(data: bytes, where: str) -> tuple[np.ndarray, list[int]]:
    batch = _unpickle_cifar_batch(data, where)
    images, labels = batch.get("data") if isinstance(batch, dict) else None, None
    if isinstance(batch, dict) and isinstance(batch.get("labels"), list):
        labels = batch["labels"]
    if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 2
            and images.shape[1] == 3 * 32 * 32 and labels is not None):
        raise StyleGANError(f"{where} is not a CIFAR-10 python batch (expected a dict with 'data', uint8 "
                            "[N, 3072], and 'labels', a list)", _CIFAR_FIX)
    if not all(type(x) is int and 0 <= x < 10 for x in labels):
        raise StyleGANError(f"{where} has labels that are not classes 0-9", _CIFAR_FIX)
    if len(labels) != len(images):
        raise StyleGANError(f"{where} has {len(images)} images but {len(labels)} labels", _CIFAR_FIX)
    return images.reshape(-1, 3, 32, 32), labels


def open_cifar10(path: Path) -> Source:
    """The CIFAR-10 python tarball: the 50,000 training images of data_batch_1..5 with class labels 0..9.

    One pass over the archive: each batch is read where it lies, after its declared size is checked
    against ``CIFAR_BATCH_BYTES``; at most ``MAX_TAR_MEMBERS`` members are looked at.
    """
    wanted = {CIFAR10_MEMBER.format(b): b for b in range(1, 6)}
    batches: dict[int, tuple[np.ndarray, list[int]]] = {}
    fix = f"download {CIFAR10_URL} again"
    try:
        with _decompressed(path) as raw, tarfile.open(fileobj=_CappedReads(raw, CIFAR_BATCH_BYTES), mode="r:") as tar:
            for seen, info in enumerate(tar, 1):
                if seen > MAX_TAR_MEMBERS:
                    raise StyleGANError(f"{SOURCE} {path} holds more than {MAX_TAR_MEMBERS} files; it is not the "
                                        "CIFAR-10 python tarball", f"give {SOURCE_FORMS}")
                b = wanted.get(info.name)
                if b is None:
                    continue
                where = f"{path}:{info.name}"
                if not info.isfile():
                    raise StyleGANError(f"{where} is not a regular file", fix)
                if info.size > CIFAR_BATCH_BYTES:
                    raise StyleGANError(f"{where} declares {info.size} bytes, over the {CIFAR_BATCH_BYTES}-byte "
                                        "limit for one CIFAR-10 batch (a real one is 31 MB)", fix)
                with tar.extractfile(info) as f:
                    data = f.read(info.size)
                if len(data) != info.size:
                    raise StyleGANError(f"{where} is cut short", fix)
                batches[b] = _load_cifar_batch(data, where)
                del data
    except StyleGANError:
        raise
    except Exception as e:  # noqa: BLE001 - TarError, OSError, EOFError, zlib/lzma errors, DamagedMember
        raise StyleGANError(f"{SOURCE} {path} is not a readable tar archive ({cut(' '.join(str(e).split()))})",
                            fix) from None
    if 1 not in batches:
        raise StyleGANError(f"{SOURCE} {path} is a tar archive but not the CIFAR-10 python tarball "
                            f"(no {CIFAR10_MEMBER.format(1)})", f"give {SOURCE_FORMS}")
    missing = [CIFAR10_MEMBER.format(b) for b in range(1, 6) if b not in batches]
    if missing:
        raise StyleGANError(f"{SOURCE} {path} lacks {missing[0]}", "use the original cifar-10-python.tar.gz")
    images = [batches[b][0] for b in range(1, 6)]
    labels = [label for b in range(1, 6) for label in batches[b][1]]
    data = np.concatenate(images).transpose(0, 2, 3, 1)  # NCHW → NHWC

    def iterate() -> Iterator[SourceImage]:
        for i in range(len(data)):
            yield SourceImage(f"{path.name}[{i}]", labels[i], lambda i=i: data[i])

    return Source("cifar10", str(path), len(data), True, iterate)


# ---------------------------------------------------------------------------------------------------------
# MNIST

_IDX_IMAGES = re.compile(r"images([-.])idx3([-.])ubyte")


def _is_idx_images(path: Path) -> bool:
    return path.is_file() and _IDX_IMAGES.search(path.name) is not None


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An idx file (MNIST's format: magic 0 0 0x08 ndim, big-endian int32 dims, uint8 data; maybe gzipped) → array.

    The dims are multiplied out and checked against ``MAX_MEMBER_BYTES`` (and, uncompressed, against the
    file's size) before anything is allocated; a gzip file is inflated only as far as the header says.
    """
    fix = "use the original MNIST files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz)"
    damaged = "the file is truncated or damaged; download it again"
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        with (gzip.GzipFile(path) if gzipped else open(path, "rb")) as f:
            header = f.read(4 + 4 * ndim)
            if len(header) < 4 + 4 * ndim or header[:3] != b"\x00\x00\x08" or header[3] != ndim:
                raise StyleGANError(f"{path} is not an idx file of {ndim}-D unsigned bytes", fix)
            dims = [int.from_bytes(header[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
            size = 1
            for d in dims:
                size *= d  # Python ints: no overflow
            if size > MAX_MEMBER_BYTES:
                raise StyleGANError(f"{path}: its header declares {dims} ({size} bytes), over the "
                                    f"{MAX_MEMBER_BYTES}-byte limit", fix)
            present = None if gzipped else path.stat().st_size - len(header)
            if present is not None and present != size:
                raise StyleGANError(f"{path} holds {present} bytes of data but its header says {dims}", damaged)
            body = read_exactly(f, size)
            if body is None or f.read(1):
                raise StyleGANError(f"{path} holds {'fewer' if body is None else 'more'} bytes of data than its "
                                    f"header says ({dims})", damaged)
    except StyleGANError:
        raise
    except Exception as e:  # noqa: BLE001 - BadGzipFile, EOFError, zlib.error, OSError: damaged or unreadable
        raise StyleGANError(f"cannot read {path} ({cut(' '.join(str(e).split()))})", damaged) from None
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def mnist_labels_path(images: Path) -> Path | None:
    """``train-images-idx3-ubyte.gz`` → the existing ``train-labels-idx1-ubyte(.gz)`` beside it, or None."""
    stem = _IDX_IMAGES.sub(lambda m: f"labels{m.group(1)}idx1{m.group(2)}ubyte", images.name)
    base = stem[:-3] if stem.endswith(".gz") else stem
    for name in (stem, base + ".gz", base):
        if (images.parent / name).is_file():
            return images.parent / name
    return None


def pad_to_power_of_two(images: np.ndarray) -> np.ndarray:
    """``[N, H, W]`` square images → zero-padded, centred, to the next power of two (28 → 32 like the official tool)."""
    h = images.shape[1]
    size = 1 << max(h - 1, 0).bit_length()
    if size == h:
        return images
    before = (size - h) // 2
    return np.pad(images, [(0, 0), (before, size - h - before), (before, size - h - before)])


def open_mnist(path: Path) -> Source:
    """MNIST-style idx files: images padded to a power of two (28×28 → 32×32), labels from the sibling file."""
    images = read_idx(path, 3)
    notes = []
    if len(images) and images.shape[1] * images.shape[2] == 0:
        raise StyleGANError(f"{path} has images of {images.shape[2]}x{images.shape[1]} pixels",
                            "use MNIST-style idx files of square images")
    if images.shape[1] != images.shape[2]:
        raise StyleGANError(f"{path} has {images.shape[2]}x{images.shape[1]} images; expected square ones",
                            "use MNIST-style idx files of square images")
    padded = pad_to_power_of_two(images)
    if padded.shape[1] != images.shape[1]:
        notes.append(f"MNIST images were padded from {images.shape[1]}x{images.shape[1]} to "
                     f"{padded.shape[1]}x{padded.shape[1]} with black borders, like the official tool")
    labels_path = mnist_labels_path(path)
    labels = None
    if labels_path is None:
        notes.append(f"no labels file beside {path.name}; the dataset is unlabeled")
    else:
        labels = read_idx(labels_path, 1)
        if len(labels) != len(images):
            raise StyleGANError(f"{path.name} has {len(images)} images but {labels_path.name} has {len(labels)} labels",
                                "use an images file and labels file from the same set")

    def iterate() -> Iterator[SourceImage]:
        for i in range(len(padded)):
            yield SourceImage(f"{path.name}[{i}]", int(labels[i]) if labels is not None else None,
                              lambda i=i: padded[i])

    return Source("mnist", str(path), len(padded), labels is not None, iterate, notes)


# ---------------------------------------------------------------------------------------------------------
# scikit-learn's digits


def sklearn_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 1,797 handwritten digits: uint8 ``[N, 8, 8]`` in 0..255 and int labels 0..9."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise StyleGANError(f"{SOURCE} sklearn-digits needs scikit-learn",
                            "pip install scikit-learn, or stylegan[digits]") from None
    digits = load_digits()
    images = np.rint(digits.images * (255 / 16)).clip(0, 255).astype(np.uint8)  # 0..16 → 0..255
    return images, digits.target.astype(np.int64)


def open_sklearn_digits() -> Source:
    images, labels = sklearn_digits_arrays()

    def iterate() -> Iterator[SourceImage]:
        for i in range(len(images)):
            yield SourceImage(f"{SKLEARN_DIGITS}[{i}]", int(labels[i]), lambda i=i: images[i])

    return Source(SKLEARN_DIGITS, SKLEARN_DIGITS, len(images), True, iterate)
