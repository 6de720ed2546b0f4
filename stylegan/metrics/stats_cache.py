"""On-disk cache of real-image statistics, keyed by dataset content, detector file and options.

Files live in ``<cache>/metrics/`` (``$STYLEGAN_CACHE_DIR``, default ``~/.cache/stylegan``) as
``<dataset>-<detector>-<key>.npz`` (see :mod:`stylegan.metrics.stats`). The key hashes the dataset
fingerprint (changes with any image or label change), the detector file's SHA-256, the x-flip setting,
the number of images and a format version, so a changed dataset or detector never reuses old numbers.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

from stylegan.formats.cache import cache_dir
from stylegan.metrics.stats import FeatureStats

CACHE_VERSION = 1


@functools.lru_cache(maxsize=16)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # cache key only
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file (remembered per path, size and modification time)."""
    st = os.stat(path)
    return _file_digest(str(path), st.st_size, st.st_mtime_ns)


def stats_key(*, dataset_fingerprint: str, detector_digest: str, xflip: bool, num_items: int,
              resolution: int) -> str:
    """A 32-hex key for real statistics computed with these inputs."""
    blob = json.dumps(dict(version=CACHE_VERSION, dataset=dataset_fingerprint, detector=detector_digest,
                           xflip=bool(xflip), num_items=int(num_items), resolution=int(resolution)), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def stats_path(dataset_name: str, detector: str, key: str, root: str | os.PathLike | None = None) -> Path:
    base = Path(root) if root is not None else cache_dir() / "metrics"
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in dataset_name) or "dataset"
    return base / f"{safe}-{detector}-{key}.npz"


def load_cached(path: Path, need_features: bool) -> FeatureStats | None:
    """The cached statistics at ``path`` if present, readable and complete enough; otherwise None."""
    if not path.is_file():
        return None
    try:
        stats = FeatureStats.load(path)
    except Exception:  # noqa: BLE001 - a damaged cache file is simply recomputed
        return None
    if need_features and not stats.has_features:
        return None
    return stats


def save_cached(stats: FeatureStats, path: Path) -> bool:
    """Store ``stats`` at ``path`` for later runs; False when the cache cannot be written (that only costs
    time next run, so it is not an error)."""
    try:
        stats.save(path)
    except OSError:
        return False
    return True
