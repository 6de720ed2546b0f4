"""Reading a dataset (ZIP or folder in the official layout) for training and metrics.

:class:`ImageDataset` is a torch ``Dataset`` of ``(image, label)``: the image uint8 ``[C, H, W]`` (numpy),
the label float32 ``[label_dim]`` (one-hot for class labels, the stored vector otherwise, ``[0]`` when the
dataset is unlabeled or ``use_labels`` is off). It behaves like the official ``ImageFolderDataset``:
same file selection and order, same ``max_size`` subset for a given seed, x-flips appended after it.
"""

from __future__ import annotations

import os
import signal
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from stylegan.data.images import decode_error_text, decode_hwc, is_image_name
from stylegan.data.labels import LABELS_FILE, labels_to_array, match_labels, parse_labels_json
from stylegan.errors import StyleGANError

MAKE_FIX = "make one with `stylegan dataset --source ... --dest data.zip`"


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
        self._path = Path(path)
        self._zip: Optional[zipfile.ZipFile] = None
        self._zip_pid: Optional[int] = None
        self._use_labels = use_labels
        self._names, self._all_names = self._list_files()
        if not self._names:
            raise StyleGANError(f"dataset {self._path} has no images", MAKE_FIX)

        first = self._load_raw(0)
        self._image_shape = [first.shape[2], first.shape[0], first.shape[1]]  # CHW
        c, h, w = self._image_shape
        if h != w:
            raise StyleGANError(f"dataset {self._path} has {w}x{h} images ({self._names[0]}); training needs square ones",
                                "rebuild it with `stylegan dataset --transform center-crop --resolution NxN`")
        if resolution is not None and resolution != h:
            raise StyleGANError(f"dataset {self._path} has {w}x{h} images but resolution {resolution} was asked for",
                                f"rebuild it with `stylegan dataset --resolution {resolution}x{resolution}`, "
                                f"or use resolution {h}")

        self._raw_labels = self._load_labels() if use_labels else None
        if self._raw_labels is None:
            self._raw_labels = np.zeros([len(self._names), 0], dtype=np.float32)
        if self._raw_labels.dtype == np.int64:
            self._label_shape = [int(self._raw_labels.max()) + 1 if len(self._raw_labels) else 0]
        else:
            self._label_shape = list(self._raw_labels.shape[1:])

        # Subset, then mirror: the same indices as the official reader for the same seed.
        self._raw_idx = np.arange(len(self._names), dtype=np.int64)
        if max_size is not None:
            if max_size < 1:
                raise StyleGANError(f"max_size {max_size} leaves no images", "give at least 1, or None for all")
            if len(self._raw_idx) > max_size:
                np.random.RandomState(random_seed).shuffle(self._raw_idx)
                self._raw_idx = np.sort(self._raw_idx[:max_size])
        self._xflip = np.zeros(len(self._raw_idx), dtype=bool)
        if xflip:
            self._raw_idx = np.tile(self._raw_idx, 2)
            self._xflip = np.concatenate([self._xflip, np.ones_like(self._xflip)])

    # ------------------------------------------------------------------------------------------ files

    def _list_files(self) -> tuple[list[str], set[str]]:
        p = self._path
        if p.is_dir():
            self._kind = "dir"
            all_names = {f.relative_to(p).as_posix() for f in p.rglob("*") if f.is_file()}
        elif p.is_file() and p.suffix.lower() == ".zip":
            self._kind = "zip"
            try:
                all_names = set(self._zipfile().namelist())
            except (zipfile.BadZipFile, OSError) as e:
                raise StyleGANError(f"dataset {p} is not a readable ZIP ({e})", MAKE_FIX) from None
        elif p.exists():
            raise StyleGANError(f"dataset {p} is neither a folder nor a .zip", MAKE_FIX)
        else:
            raise StyleGANError(f"dataset {p} does not exist", "check the path, or " + MAKE_FIX)
        return sorted(n for n in all_names if is_image_name(n)), all_names

    def _zipfile(self) -> zipfile.ZipFile:
        # A ZipFile shares one file position; after a fork (DataLoader workers) each process needs its own.
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = zipfile.ZipFile(self._path)
            self._zip_pid = os.getpid()
        return self._zip

    def _read_bytes(self, name: str) -> bytes:
        if self._kind == "dir":
            return (self._path / name).read_bytes()
        return self._zipfile().read(name)

    def _load_raw(self, raw_idx: int) -> np.ndarray:
        """Image ``raw_idx`` as uint8 HWC, decoded (pyspng for PNG when installed)."""
        name = self._names[raw_idx]
        try:
            return decode_hwc(self._read_bytes(name))
        except Exception as e:  # noqa: BLE001 - any failure here is a damaged file
            raise StyleGANError(f"dataset {self._path}: cannot read {name} ({decode_error_text(e)})",
                                "repair or remove the file, or rebuild the dataset with `stylegan dataset`") from None

    def _load_labels(self) -> Optional[np.ndarray]:
        if LABELS_FILE not in self._all_names:
            return None
        where = f"{self._path}/{LABELS_FILE}" if self._kind == "dir" else f"{self._path}:{LABELS_FILE}"
        labels = parse_labels_json(self._read_bytes(LABELS_FILE), where)
        if labels is None:
            return None
        return labels_to_array(match_labels(labels, self._names, where))

    def close(self) -> None:
        """Close the ZIP (it is reopened on the next access)."""
        if self._zip is not None:
            try:
                if self._zip_pid == os.getpid():
                    self._zip.close()
            finally:
                self._zip = None

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _zip=None, _zip_pid=None)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - nothing useful to do during interpreter teardown
            pass

    # ------------------------------------------------------------------------------------------ items

    def __len__(self) -> int:
        return len(self._raw_idx)

    def __getitem__(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        raw_idx = int(self._raw_idx[idx])
        hwc = self._load_raw(raw_idx)
        image = hwc.transpose(2, 0, 1)
        if list(image.shape) != self._image_shape:
            c, h, w = self._image_shape
            raise StyleGANError(
                f"dataset {self._path}: {self._names[raw_idx]} is {image.shape[2]}x{image.shape[1]} with "
                f"{image.shape[0]} channel(s), but {self._names[0]} is {w}x{h} with {c}",
                "rebuild the dataset with `stylegan dataset` so every image has the same size and channels")
        if self._xflip[idx]:
            image = image[:, :, ::-1]
        # Decoders may hand out read-only buffers; torch's collate warns about (and must not alias) those.
        return np.require(image, requirements=["C_CONTIGUOUS", "WRITEABLE"]), self.get_label(idx)

    def get_label(self, idx: int) -> np.ndarray:
        """The float32 ``[label_dim]`` label of item ``idx`` (one-hot for classes)."""
        label = self._raw_labels[self._raw_idx[idx]]
        if self._raw_labels.dtype == np.int64:
            onehot = np.zeros(self._label_shape, dtype=np.float32)
            onehot[label] = 1
            return onehot
        return label.astype(np.float32, copy=True)

    def raw_index(self, idx: int) -> int:
        """Which image (in sorted file order) item ``idx`` shows."""
        return int(self._raw_idx[idx])

    def is_flipped(self, idx: int) -> bool:
        return bool(self._xflip[idx])

    def file_name(self, idx: int) -> str:
        return self._names[self.raw_index(idx)]

    # ------------------------------------------------------------------------------------------ properties

    @property
    def path(self) -> Path:
        return self._path

    @property
    def name(self) -> str:
        """The file or folder name without extension (``ffhq`` for ``ffhq.zip``)."""
        return self._path.stem if self._kind == "zip" else self._path.name

    @property
    def image_shape(self) -> list[int]:
        return list(self._image_shape)

    @property
    def num_channels(self) -> int:
        return self._image_shape[0]

    @property
    def resolution(self) -> int:
        return self._image_shape[1]

    @property
    def label_shape(self) -> list[int]:
        return list(self._label_shape)

    @property
    def label_dim(self) -> int:
        return self._label_shape[0]

    @property
    def has_labels(self) -> bool:
        return any(x != 0 for x in self._label_shape)

    @property
    def has_onehot_labels(self) -> bool:
        return self._raw_labels.dtype == np.int64

    def __repr__(self) -> str:
        return (f"ImageDataset({str(self._path)!r}, {len(self)} items, {self.resolution}x{self.resolution}, "
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


def require_labels(dataset: ImageDataset, option: str = "--cond") -> None:
    """Raise StyleGANError when labels were requested (``option``) but ``dataset`` has none."""
    if not dataset.has_labels:
        why = "labels are off (use_labels=False)" if not dataset._use_labels else "it has no labels in dataset.json"
        raise StyleGANError(f"{option} needs labels, but dataset {dataset.name} has none ({why})",
                            f"drop {option}, or make the dataset with labels (a dataset.json; see `stylegan dataset`)")
