"""How training snapshots are named on disk (``network-snapshot-000120.safetensors``) and found again.

Shared by training (``--resume latest``), the metrics hook and ``stylegan metrics`` (which read the kimg from
an official ``network-snapshot-000120.pkl`` name when the file holds no counters).
"""

from __future__ import annotations

import re
from pathlib import Path

SNAPSHOT_SUFFIX = ".safetensors"
_KIMG_IN_NAME = re.compile(r"network-snapshot-(\d+)")


def snapshot_filename(kimg: int) -> str:
    """Our snapshot file name for ``kimg`` thousand images shown (six digits, as the official loop writes)."""
    return f"network-snapshot-{int(kimg):06d}{SNAPSHOT_SUFFIX}"


def kimg_from_name(path: str | Path) -> int | None:
    """The kimg written into a ``network-snapshot-NNNNNN…`` file name, or None for any other name."""
    found = _KIMG_IN_NAME.match(Path(path).name)
    return int(found.group(1)) if found else None


def latest_snapshot(outdir: Path) -> Path | None:
    """The snapshot to resume from under ``outdir``: in the newest-named run folder, the highest kimg."""
    ranked = []
    for path in outdir.glob(f"*/network-snapshot-*{SNAPSHOT_SUFFIX}"):
        kimg = kimg_from_name(path)
        if kimg is not None and path.name == snapshot_filename(kimg):
            ranked.append(((path.parent.name, kimg), path))
    return max(ranked)[1] if ranked else None
