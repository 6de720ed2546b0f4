"""Reading a dataset (ZIP or folder in the official layout) for training and metrics.

:class:`ImageDataset` is a torch ``Dataset`` of ``(image, label)``: the image uint8 ``[C, H, W]`` (numpy),
the label float32 ``[label_dim]`` (one-hot for class labels, the stored vector otherwise, ``[0]`` when the
dataset is unlabeled or ``use_labels`` is off). It is interchangeable with the official reader: the same
files in the same order, the same ``max_size`` subset for a given seed, mirrored copies after it.
"""

from __future__ import annotations

import os
import signal
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from stylegan.data.archives import DamagedMember, open_zip, read_member
from stylegan.data.images import decode_error_text, decode_hwc, is_image_name
from stylegan.data.labels import LABELS_FILE, labels_to_array, match_labels, parse_labels_json
from stylegan.errors import StyleGANError, setting
from stylegan.limits import MAX_JSON_BYTES, MAX_MEMBER_BYTES

MAKE_FIX = "make one with `stylegan dataset --source ... --dest data.zip`"

Item = tuple[int, bool]  # (index into the sorted image list, shown mirrored)


def subset_indices(count: int, max_size: Optional[int], seed: int) -> np.ndarray:
    """The images a ``max_size`` subset keeps: ascending indices into the ``count`` sorted images.

    Matches the official reader image for image: a ``RandomState(seed)`` permutation of all ``count``
    indices, its first ``max_size`` kept, in ascending order. ``None`` (or a large enough size) keeps all.
    """
    if max_size is None or count <= max_size:
        return np.arange(count, dtype=np.int64)
    permuted = np.random.RandomState(seed).permutation(count)
    return np.sort(permuted[:max_size])


def item_table(count: int, max_size: Optional[int], seed: int, mirror: bool) -> list[Item]:
    """Every dataset item as an (image index, mirrored) pair: the subset, then (with ``mirror``) the same
    images again, flipped, in the same order."""
    kept = [int(i) for i in subset_indices(count, max_size, seed)]
    table = [(i, False) for i in kept]
    if mirror:
        table += [(i, True) for i in kept]
    return table


def one_hot(index: int, num_classes: int) -> np.ndarray:
    """float32 ``[num_classes]``: 1 at ``index``, 0 elsewhere."""
    return np.eye(1, num_classes, index, dtype=np.float32)[0]


class ImageDataset(torch.utils.data.Dataset):
    """Images and labels of a dataset ZIP or folder.

    Args:
        path: a ``.zip`` or a folder of images (recursively), with an optional ``dataset.json``.
        resolution: expected side length; None takes it from the first image.
        max_size: use a random subset of at most this many images (chosen with ``random_seed``;
            applied before ``xflip``). None means all.
        xflip: double the dataset with horizontally mirrored copies.
        use_labels: read labels from dataset.json; False makes every label ``[0]``-shaped.
        random_seed: seed for the ``max_size`` subset.

    Safe with DataLoader workers: an open ZIP is never shared between processes (it is reopened in each
    worker and dropped when pickled).
    """

    def __init__(self, path: str | os.PathLike, resolution: Optional[int] = None, max_size: Optional[int] = None,
                 xflip: bool = False, use_labels: bool = True, random_seed: int = 0):
        self._root = Path(path)
        self._archive: Optional[zipfile.ZipFile] = None
        self._archive_pid: Optional[int] = None
        self._labels_requested = use_labels
        self._is_zip, self._member_names = self._scan()
        self._image_names = sorted(n for n in self._member_names if is_image_name(n))
        if not self._image_names:
            raise StyleGANError(f"dataset {self._root} has no images", MAKE_FIX)
        self._chw = self._shape_of_first_image(resolution)

        # Labels: int64 class per image (read as one-hot), float32 vectors, or neither.
        stored = self._read_labels() if use_labels else None
        self._classes: Optional[np.ndarray] = None
        self._vectors = np.zeros([len(self._image_names), 0], dtype=np.float32)
        if stored is not None and stored.dtype == np.int64:
            self._classes = stored
        elif stored is not None:
            self._vectors = stored
        self._label_dim = self._vectors.shape[1] if self._classes is None else (
            int(self._classes.max()) + 1 if len(self._classes) else 0)

        if max_size is not None and max_size < 1:
            raise StyleGANError(f"max_size {max_size} leaves no images", "give at least 1, or None for all")
        self._items = item_table(len(self._image_names), max_size, random_seed, xflip)

    # ------------------------------------------------------------------------------------------ files

    def _scan(self) -> tuple[bool, set[str]]:
        """(whether the dataset is a ZIP, every file name in it with ``/`` separators)."""
        root = self._root
        if root.is_dir():
            return False, {f.relative_to(root).as_posix() for f in root.rglob("*") if f.is_file()}
        if root.is_file() and root.suffix.lower() == ".zip":
            # Refuses damaged ZIPs and repeated member names (which copy a reader gets is up to the reader).
            return True, set(self._open_archive().namelist())
        if root.exists():
            raise StyleGANError(f"dataset {root} is neither a folder nor a .zip", MAKE_FIX)
        raise StyleGANError(f"dataset {root} does not exist", "check the path, or " + MAKE_FIX)

    def _shape_of_first_image(self, resolution: Optional[int]) -> list[int]:
        """``[C, H, W]`` of the first image, which must be square (and ``resolution`` wide when given)."""
        h, w, c = self._decode(0).shape
        if h != w:
            raise StyleGANError(
                f"dataset {self._root} has {w}x{h} images ({self._image_names[0]}); training needs square ones",
                "rebuild it with `stylegan dataset --transform center-crop --resolution NxN`")
        if resolution is not None and resolution != h:
            raise StyleGANError(f"dataset {self._root} has {w}x{h} images but resolution {resolution} was asked for",
                                f"rebuild it with `stylegan dataset --resolution {resolution}x{resolution}`, "
                                f"or use resolution {h}")
        return [c, h, w]

    def _open_archive(self) -> zipfile.ZipFile:
        # A ZipFile shares one file position; after a fork (DataLoader workers) each process needs its own.
        if self._archive is None or self._archive_pid != os.getpid():
            self._archive = open_zip(self._root, f"dataset {self._root}", MAKE_FIX)
            self._archive_pid = os.getpid()
        return self._archive

    def _file_bytes(self, name: str, limit: int = MAX_MEMBER_BYTES) -> bytes:
        """A member's bytes; DamagedMember when it is over ``limit`` (declared, or as it inflates) or damaged."""
        if self._is_zip:
            return read_member(self._open_archive(), name, limit)
        path = self._root / name
        if path.stat().st_size > limit:
            raise DamagedMember(f"is {path.stat().st_size} bytes, over the {limit}-byte limit for one file")
        return path.read_bytes()

    def _decode(self, image_index: int) -> np.ndarray:
        """Image ``image_index`` (in sorted file order) as uint8 HWC (pyspng for PNG when installed)."""
        name = self._image_names[image_index]
        try:
            return decode_hwc(self._file_bytes(name))
        except StyleGANError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure here is a damaged file
            raise StyleGANError(f"dataset {self._root}: cannot read {name} ({decode_error_text(e)})",
                                "repair or remove the file, or rebuild the dataset with `stylegan dataset`") from None

    def _read_labels(self) -> Optional[np.ndarray]:
        """Labels of every image from dataset.json (see ``labels_to_array``), or None when it has none."""
        if LABELS_FILE not in self._member_names:
            return None
        where = f"{self._root}:{LABELS_FILE}" if self._is_zip else f"{self._root}/{LABELS_FILE}"
        try:
            text = self._file_bytes(LABELS_FILE, MAX_JSON_BYTES)
        except (DamagedMember, OSError) as e:
            raise StyleGANError(f"cannot read {where}: {e}", MAKE_FIX) from None
        labels = parse_labels_json(text, where)
        return None if labels is None else labels_to_array(match_labels(labels, self._image_names, where))

    def close(self) -> None:
        """Close the ZIP (it is reopened on the next access)."""
        archive, self._archive = self._archive, None
        if archive is not None and self._archive_pid == os.getpid():
            archive.close()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_archive": None, "_archive_pid": None}

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - nothing useful to do during interpreter teardown
            pass

    # ------------------------------------------------------------------------------------------ items

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        image_index, mirrored = self._items[idx]
        chw = self._decode(image_index).transpose(2, 0, 1)
        if list(chw.shape) != self._chw:
            c, h, w = self._chw
            raise StyleGANError(
                f"dataset {self._root}: {self._image_names[image_index]} is {chw.shape[2]}x{chw.shape[1]} with "
                f"{chw.shape[0]} channel(s), but {self._image_names[0]} is {w}x{h} with {c}",
                "rebuild the dataset with `stylegan dataset` so every image has the same size and channels")
        if mirrored:
            chw = chw[:, :, ::-1]
        # Decoders may hand out read-only buffers; torch's collate warns about (and must not alias) those.
        return np.require(chw, requirements=["C_CONTIGUOUS", "WRITEABLE"]), self.get_label(idx)

    def get_label(self, idx: int) -> np.ndarray:
        """The float32 ``[label_dim]`` label of item ``idx`` (one-hot for classes)."""
        image_index = self._items[idx][0]
        if self._classes is not None:
            return one_hot(int(self._classes[image_index]), self._label_dim)
        return self._vectors[image_index].copy()

    def raw_index(self, idx: int) -> int:
        """Which image (in sorted file order) item ``idx`` shows."""
        return self._items[idx][0]

    def is_flipped(self, idx: int) -> bool:
        return self._items[idx][1]

    def file_name(self, idx: int) -> str:
        return self._image_names[self.raw_index(idx)]

    # ------------------------------------------------------------------------------------------ properties

    @property
    def path(self) -> Path:
        return self._root

    @property
    def name(self) -> str:
        """The file or folder name without extension (``ffhq`` for ``ffhq.zip``)."""
        return self._root.stem if self._is_zip else self._root.name

    @property
    def labels_requested(self) -> bool:
        """Whether labels were asked for (``use_labels``), whether or not the dataset has any."""
        return self._labels_requested

    @property
    def image_shape(self) -> list[int]:
        return list(self._chw)

    @property
    def num_channels(self) -> int:
        return self._chw[0]

    @property
    def resolution(self) -> int:
        return self._chw[1]

    @property
    def label_shape(self) -> list[int]:
        return [self._label_dim]

    @property
    def label_dim(self) -> int:
        return self._label_dim

    @property
    def has_labels(self) -> bool:
        return self.label_dim != 0

    @property
    def has_onehot_labels(self) -> bool:
        return self._classes is not None

    def __repr__(self) -> str:
        return (f"ImageDataset({str(self._root)!r}, {len(self)} items, {self.resolution}x{self.resolution}, "
                f"{self.num_channels} channel(s), label_dim {self.label_dim})")


# Signals that ask a run to stop. A terminal's Ctrl-C (SIGINT) or hang-up (SIGHUP) and job schedulers
# (SLURM, systemd, timeout: SIGTERM) signal the whole process group, data-loader workers included.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def leave_stop_signals_to_the_main_process(worker_id: int) -> None:
    """A data-loader ``worker_init_fn``: workers ignore the stop signals. A worker dying of one would abort
    the main process before it could stop cleanly (training writes a snapshot first) and end its workers."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _describe(resolution: int, channels: int, labels: str) -> str:
    return f"{resolution}x{resolution}, {channels} channel{'s' if channels != 1 else ''}, {labels}"


def check_dataset_fits(dataset: ImageDataset, img_resolution: int, img_channels: int, c_dim: int) -> None:
    """Raise StyleGANError unless the network (``img_resolution``, ``img_channels``, ``c_dim``) fits ``dataset``.

    A conditional network (``c_dim > 0``) needs labels of exactly ``c_dim`` dimensions; an unconditional
    one ignores any labels the dataset has.
    """
    problems = []
    if dataset.resolution != img_resolution:
        problems.append(f"resolution {dataset.resolution} vs {img_resolution}")
    if dataset.num_channels != img_channels:
        problems.append(f"channels {dataset.num_channels} vs {img_channels}")
    if c_dim > 0 and dataset.label_dim != c_dim:
        problems.append(f"labels: {dataset.label_dim if dataset.has_labels else 'none'} vs c_dim {c_dim}")
    if not problems:
        return
    labels = f"label_dim {dataset.label_dim}" if dataset.has_labels else "no labels"
    fixes = []
    if dataset.resolution != img_resolution or dataset.num_channels != img_channels:
        fixes.append(f"rebuild the dataset with `stylegan dataset --resolution {img_resolution}x{img_resolution}"
                     + (f" --channels {img_channels}" if dataset.num_channels != img_channels else "") + "`")
    if c_dim > 0 and dataset.label_dim != c_dim:
        fixes.append("use a dataset whose dataset.json has labels matching the network's classes"
                     if dataset.has_labels else "use a labeled dataset or an unconditional network")
    raise StyleGANError(
        f"dataset {dataset.name} ({_describe(dataset.resolution, dataset.num_channels, labels)}) does not fit the "
        f"network ({_describe(img_resolution, img_channels, f'c_dim {c_dim}')}): " + "; ".join(problems),
        ", or ".join(fixes + ["use a network made for this dataset"]))


def require_labels(dataset: ImageDataset, option: str = setting("cond")) -> None:
    """Raise StyleGANError when labels were requested (by the setting ``option`` names, as messages name
    it: training's ``cond (--cond)`` by default) but ``dataset`` has none."""
    if not dataset.has_labels:
        why = "labels are off (use_labels=False)" if not dataset.labels_requested else "it has no labels in dataset.json"
        raise StyleGANError(f"{option} needs labels, but dataset {dataset.name} has none ({why})",
                            f"turn off {option}, or make the dataset with labels "
                            "(a dataset.json; see `stylegan dataset`)")
