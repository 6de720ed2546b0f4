"""Datasets: the dataset tool (any source → official ZIP/folder layout) and the reader used for training.

- :func:`convert_dataset` — folder/ZIP of images, CIFAR-10 tarball, MNIST idx, LSUN LMDB, sklearn digits →
  ``00000/img00000000.png`` + ``dataset.json``, written atomically.
- :class:`ImageDataset` — a torch Dataset of (uint8 CHW image, float32 label) over such a ZIP or folder.
- :func:`check_dataset_fits`, :func:`require_labels` — dataset vs network / options checks.
- :func:`dataset_fingerprint` — a fast content key for cached statistics.
- :func:`leave_stop_signals_to_the_main_process` — the data-loader workers' ``worker_init_fn``.
"""

from stylegan.data.dataset import (ImageDataset, check_dataset_fits, leave_stop_signals_to_the_main_process,
                                   require_labels)
from stylegan.data.fingerprint import dataset_fingerprint
from stylegan.data.tool import ConvertReport, convert_dataset
from stylegan.data.transforms import parse_resolution

__all__ = [
    "ConvertReport",
    "ImageDataset",
    "check_dataset_fits",
    "convert_dataset",
    "dataset_fingerprint",
    "leave_stop_signals_to_the_main_process",
    "parse_resolution",
    "require_labels",
]
