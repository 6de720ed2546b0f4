"""A fast content fingerprint of a dataset, for keying cached statistics (e.g. FID reference features).

It reads no image data:
- ZIP: the name, CRC-32 and size of every image and of dataset.json, from the central directory, so it
  changes with any content change and not with timestamps;
- folder: the relative path, size and modification time (ns) of every image, plus the bytes of
  dataset.json, so it changes when any file is edited, added, removed or renamed.
Files that are neither images nor dataset.json do not count.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from stylegan.data.archives import open_zip
from stylegan.data.images import is_image_name
from stylegan.data.labels import LABELS_FILE
from stylegan.errors import StyleGANError

FINGERPRINT_VERSION = 1
FINGERPRINT_CHARS = 32


def dataset_fingerprint(path: str | os.PathLike) -> str:
    """A 32-character hex digest identifying the dataset at ``path`` (ZIP or folder)."""
    p = Path(path)
    h = hashlib.sha256(f"stylegan-dataset-fingerprint-v{FINGERPRINT_VERSION}\n".encode())
    if p.is_dir():
        h.update(b"dir\n")
        for rel, f in sorted((f.relative_to(p).as_posix(), f) for f in p.rglob("*") if f.is_file()):
            if rel == LABELS_FILE:
                h.update(b"labels\0" + f.read_bytes() + b"\n")
            elif is_image_name(rel):
                st = f.stat()
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    elif p.is_file():
        h.update(b"zip\n")
        with open_zip(p, f"dataset {p}", "give a dataset ZIP or folder") as z:  # refuses repeated names too
            infos = sorted(z.infolist(), key=lambda i: i.filename)
        for info in infos:
            if info.filename == LABELS_FILE or is_image_name(info.filename):
                h.update(f"{info.filename}\0{info.CRC:08x}\0{info.file_size}\n".encode())
    else:
        raise StyleGANError(f"dataset {p} does not exist", "give a dataset ZIP or folder")
    return h.hexdigest()[:FINGERPRINT_CHARS]
