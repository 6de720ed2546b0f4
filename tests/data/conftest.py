"""Tiny datasets made on the spot, in the formats the official tools read and write."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest


def random_image(rng: np.random.RandomState, h: int, w: int, channels: int = 3) -> np.ndarray:
    shape = (h, w) if channels == 1 else (h, w, channels)
    return rng.randint(0, 256, size=shape, dtype=np.uint8)


def save_image(path: Path, arr: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(arr).save(path, **kwargs)
    return path


def write_labels(root: Path, labels) -> None:
    (root / "dataset.json").write_text(json.dumps({"labels": labels}))


def make_image_folder(root: Path, n: int = 6, size: int = 16, channels: int = 3, labels: bool = True,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` lossless PNGs in ``root`` and a subfolder; class labels i % 3. Returns {relative name: pixels}."""
    rng = np.random.RandomState(seed)
    images = {}
    for i in range(n):
        name = f"img{i:02d}.png" if i % 2 == 0 else f"sub/img{i:02d}.png"
        images[name] = random_image(rng, size, size, channels)
        save_image(root / name, images[name])
    if labels:
        write_labels(root, [[name, i % 3] for i, name in enumerate(images)])
    return images


def make_cifar10_tarball(path: Path, per_batch: int = 3, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """A cifar-10-python.tar.gz in the real layout (pickled dicts of data [N, 3072] uint8 and labels)."""
    rng = np.random.RandomState(seed)
    all_images, all_labels = [], []
    with tarfile.open(path, "w:gz") as tar:
        for b in range(1, 6):
            data = rng.randint(0, 256, size=(per_batch, 3 * 32 * 32), dtype=np.uint8)
            labels = [int(x) for x in rng.randint(0, 10, size=per_batch)]
            batch = {"batch_label": f"training batch {b} of 5", "labels": labels, "data": data,
                     "filenames": [f"file_{b}_{i}.png" for i in range(per_batch)]}
            raw = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/data_batch_{b}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
            all_images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            all_labels += labels
    return np.concatenate(all_images), all_labels


def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def make_mnist(folder: Path, n: int = 5, seed: int = 0, gz: bool = True) -> tuple[Path, np.ndarray, np.ndarray]:
    """train-images-idx3-ubyte(.gz) and train-labels-idx1-ubyte(.gz) with ``n`` 28×28 digits."""
    rng = np.random.RandomState(seed)
    images = rng.randint(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.randint(0, 10, size=n).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    write = (lambda p, b: p.write_bytes(gzip.compress(b))) if gz else (lambda p, b: p.write_bytes(b))
    write(folder / f"train-images-idx3-ubyte{suffix}", idx_bytes(images))
    write(folder / f"train-labels-idx1-ubyte{suffix}", idx_bytes(labels))
    return folder / f"train-images-idx3-ubyte{suffix}", images, labels


@pytest.fixture
def rng():
    return np.random.RandomState(1234)
