"""Inputs of the dataset tool: folders and ZIPs of images, CIFAR-10, MNIST, LSUN LMDB, sklearn digits.

:func:`open_source` guesses the format from the path and returns a :class:`Source`: its length, whether
it has labels, and an iterator of :class:`SourceImage` in a fixed order. Nothing is decoded until an
item's ``read()`` is called, so a corrupt file is one failed item rather than a failed source.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import re
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Union

import numpy as np
import PIL.Image

from stylegan.data.images import is_image_name, open_image
from stylegan.data.labels import LABELS_FILE, Label, match_labels, parse_labels_json
from stylegan.errors import StyleGANError, setting

SKLEARN_DIGITS = "sklearn-digits"
CIFAR10_MEMBER = "cifar-10-batches-py/data_batch_{}"
SOURCE_FORMS = ("a folder of images, a .zip of images, cifar-10-python.tar.gz, "
                "an MNIST *-images-idx3-ubyte(.gz) file, an LSUN *_lmdb folder, or sklearn-digits")
SOURCE = setting("source")  # how messages name the input: the Python argument and the dataset command's flag

Decoded = Union[PIL.Image.Image, np.ndarray]  # arrays are uint8 [H, W] or [H, W, C]


@dataclass
class SourceImage:
    name: str                       # where it came from, for messages (path, archive member, index)
    label: Label | None
    read: Callable[[], Decoded]     # decodes on demand; raises on a corrupt file


@dataclass
class Source:
    kind: str                       # 'folder', 'zip', 'cifar10', 'mnist', 'lsun', 'sklearn-digits'
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
        else:
            src = open_image_folder(path)
    elif _is_idx_images(path):
        src = open_mnist(path)
    elif zipfile.is_zipfile(path):
        src = open_image_zip(path)
    elif path.suffix.lower() == ".zip":
        raise StyleGANError(f"{SOURCE} {text} is not a readable ZIP", "check or re-create the archive")
    elif _is_tar(path):
        src = open_cifar10(path)
    else:
        raise StyleGANError(f"{SOURCE} {text}: unknown kind of file", f"give {SOURCE_FORMS}")
    if src.count == 0:
        raise StyleGANError(f"{SOURCE} {text} has no images (looked for PNG, JPEG, WebP, BMP and other image files)",
                            f"point {SOURCE} at a folder or archive that contains images")
    return src


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


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
    labels = _labels_for(rel, meta.read_bytes() if meta.is_file() else None, str(meta))

    def iterate() -> Iterator[SourceImage]:
        for i, name in enumerate(rel):
            yield SourceImage(name, labels[i] if labels else None,
                              lambda name=name: open_image((root / name).read_bytes()))

    return Source("folder", str(root), len(rel), labels is not None, iterate)


def open_image_zip(path: Path) -> Source:
    """Every image member of a ZIP, sorted by name; labels from its top-level dataset.json."""
    try:
        with zipfile.ZipFile(path) as z:
            names = sorted(n for n in z.namelist() if is_image_name(n))
            labels_text = z.read(LABELS_FILE) if LABELS_FILE in z.namelist() else None
    except (zipfile.BadZipFile, OSError) as e:
        raise StyleGANError(f"{SOURCE} {path} is not a readable ZIP ({e})", "check or re-create the archive") from None
    labels = _labels_for(names, labels_text, f"{path}:{LABELS_FILE}")

    def iterate() -> Iterator[SourceImage]:
        with zipfile.ZipFile(path) as z:
            for i, name in enumerate(names):
                yield SourceImage(name, labels[i] if labels else None,
                                  lambda name=name: open_image(z.read(name)))

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
# CIFAR-10


class _CifarUnpickler(pickle.Unpickler):
    """Resolves only what CIFAR-10 batches need (numpy arrays); nothing stored in the file is executed."""

    def find_class(self, module: str, name: str):
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module == "_codecs" and name == "encode":
            import codecs
            return codecs.encode
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR-10 batch")


def _load_cifar_batch(data: bytes, where: str) -> tuple[np.ndarray, list[int]]:
    try:
        batch = _CifarUnpickler(io.BytesIO(data), encoding="latin1").load()
        images = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = [int(x) for x in batch["labels"]]
    except Exception as e:  # noqa: BLE001 - any failure means the batch is not what CIFAR-10 ships
        raise StyleGANError(f"{where} is not a CIFAR-10 python batch ({e})",
                            "use the original cifar-10-python.tar.gz") from None
    if len(labels) != len(images):
        raise StyleGANError(f"{where} has {len(images)} images but {len(labels)} labels",
                            "use the original cifar-10-python.tar.gz")
    return images, labels


def open_cifar10(path: Path) -> Source:
    """The CIFAR-10 python tarball: the 50,000 training images of data_batch_1..5 with class labels 0..9."""
    images, labels = [], []
    try:
        with tarfile.open(path, "r:*") as tar:
            names = set(tar.getnames())
            if CIFAR10_MEMBER.format(1) not in names:
                raise StyleGANError(f"{SOURCE} {path} is a tar archive but not the CIFAR-10 python tarball "
                                    f"(no {CIFAR10_MEMBER.format(1)})", f"give {SOURCE_FORMS}")
            for b in range(1, 6):
                member = CIFAR10_MEMBER.format(b)
                if member not in names:
                    raise StyleGANError(f"{SOURCE} {path} lacks {member}", "use the original cifar-10-python.tar.gz")
                with tar.extractfile(member) as f:
                    x, y = _load_cifar_batch(f.read(), f"{path}:{member}")
                images.append(x)
                labels.extend(y)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise StyleGANError(f"{SOURCE} {path} is not a readable tar archive ({e})",
                            "download cifar-10-python.tar.gz again") from None
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


def _read_maybe_gzip(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise StyleGANError(f"{path} is a damaged gzip file ({e})", "download it again") from None
    return raw


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An idx file (MNIST's format: magic 0 0 0x08 ndim, big-endian int32 dims, uint8 data) → array."""
    raw = _read_maybe_gzip(path)
    if len(raw) < 4 + 4 * ndim or raw[:3] != b"\x00\x00\x08" or raw[3] != ndim:
        raise StyleGANError(f"{path} is not an idx file of {ndim}-D unsigned bytes",
                            "use the original MNIST files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz)")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(dims)):
        raise StyleGANError(f"{path} holds {len(body)} bytes of data but its header says {dims}",
                            "the file is truncated or damaged; download it again")
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
