"""Where metric results go: the result record, JSON-lines reports (``--out``, the training run folder), the
printed table, and exported reference statistics. Computing happens in :mod:`stylegan.metrics.evaluation`;
nothing here computes a metric.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from stylegan.atomic import atomic_path, probe_writable_folder
from stylegan.errors import StyleGANError
from stylegan.metrics.stats import FeatureStats
from stylegan.snapshot_names import kimg_from_name

EXPORTED_BY = "stylegan metrics"  # recorded in the meta of exported reference statistics


@dataclass
class MetricResult:
    """One metric's outcome. ``results`` maps official result names to values (``fid50k_full``, or
    ``pr50k3_full_precision`` / ``_recall``, ``is50k_mean`` / ``_std``)."""

    metric: str  # the name, with @N for a quick version
    results: dict[str, float]
    seconds: float
    num_gen: int
    num_real: int | None  # real images compared against (None: none, or imported reference statistics)
    seed: int
    network: str | None = None
    snapshot_kimg: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def value(self) -> float:
        """The headline number (FID, KID, precision, IS mean or PPL)."""
        return next(iter(self.results.values()))

    @property
    def quick_suffix(self) -> str:
        """``@N`` for a quick version (``fid50k_full@1000``), else empty: it follows every result name."""
        at = self.metric.find("@")
        return self.metric[at:] if at >= 0 else ""

    def named_values(self) -> dict[str, float]:
        """``{result name + quick suffix: value}``, the names training logs show (``pr50k3_full_recall@8``)."""
        return {key + self.quick_suffix: value for key, value in self.results.items()}

    def to_json(self) -> dict[str, Any]:
        """The JSON line: metric, value, results, seconds, counts, seed, network, snapshot_kimg, timestamp."""
        return dict(metric=self.metric, value=self.value, results=dict(self.results), seconds=round(self.seconds, 3),
                    num_gen=self.num_gen, num_real=self.num_real, seed=self.seed, network=self.network,
                    snapshot_kimg=self.snapshot_kimg, timestamp=time.time())


def snapshot_kimg(network: str | os.PathLike | None, cur_nimg: int | None = None) -> float | None:
    """The training progress a result belongs to, in kimg: from the image counter when known, else from an
    official ``network-snapshot-000120…`` file name, else None."""
    if cur_nimg is not None:
        return cur_nimg / 1000
    kimg = kimg_from_name(network) if network is not None else None
    return float(kimg) if kimg is not None else None


def append_result(path: str | os.PathLike, result: MetricResult) -> Path:
    """Append ``result`` as one JSON line to ``path``, atomically (readers never see a half-written line)."""
    path = Path(path)
    earlier = path.read_bytes() if path.is_file() else b""
    if earlier and not earlier.endswith(b"\n"):
        earlier += b"\n"
    line = json.dumps(result.to_json()) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_bytes(earlier + line.encode())
    return path


def report_to_run_dir(run_dir: str | os.PathLike, result: MetricResult) -> Path:
    """Append ``result`` to ``<run_dir>/metric-<name>.jsonl`` (the official file name) and return that path."""
    return append_result(Path(run_dir) / f"metric-{result.metric}.jsonl", result)


def write_reference_stats(stats: FeatureStats, path: str | os.PathLike) -> Path:
    """Save real-image statistics for other runs or tools (``mu``, ``sigma``, ``count``, meta; no features)."""
    stats.meta = dict(stats.meta, exported_by=EXPORTED_BY)
    return stats.save(path, with_features=False)


def format_table(results: Sequence[MetricResult]) -> str:
    """A plain-text table: one row per result value, with the metric's time and image counts."""
    header = ("metric", "value", "time", "images")
    rows = []
    for r in results:
        images = f"{r.num_gen} gen" + (f", {r.num_real} real" if r.num_real else "")
        for i, (name, value) in enumerate(r.named_values().items()):
            first = i == 0  # time and counts belong to the metric: shown on its first row only
            rows.append((name, f"{value:.6g}", f"{r.seconds:.1f}s" if first else "", images if first else ""))
    widths = [max(len(row[col]) for row in [header, *rows]) for col in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [cell.rjust(w) if col == 1 else cell.ljust(w) for col, (cell, w) in enumerate(zip(cells, widths))]
        return "  ".join(padded).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def ensure_writable_parent(path: Path | None, option: str) -> None:
    """Refuse, before hours of work, an output file ``path`` (given with ``option``) that could not be written.

    ``path`` None passes. A folder in the file's place, a missing folder, or a folder that refuses new files
    raises StyleGANError naming ``option``.
    """
    if path is None:
        return
    if path.is_dir():
        raise StyleGANError(f"{option} {path} is a folder", f"give a file name for {option}")
    folder = path.parent
    try:
        probe_writable_folder(folder)
    except OSError:
        raise StyleGANError(f"{option} {path}: folder {folder} does not exist or is not writable",
                            "create the folder first or choose another path") from None
