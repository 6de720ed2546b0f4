"""Metrics at every training snapshot: the hook `stylegan train --metrics ...` hands to the training loop.

    hook = training_hook(["fid50k_full"], detector_dir=...)   # checks names and detectors now
    values = hook(snapshot_path, context)   # on every rank; context: G_ema, dataset, device, rank, world

Every rank computes its share; rank 0 appends each result to ``<run_dir>/metric-<name>.jsonl`` (the
official file name; run_dir is the snapshot's folder). The returned ``{result name: value}`` is the same
on every rank (``fid50k_full``, ``pr50k3_full_precision``, …; quick versions carry ``@N``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

from stylegan.errors import StyleGANError, setting
from stylegan.metrics.detectors import detector_file
from stylegan.metrics.evaluation import evaluate
from stylegan.metrics.reports import report_to_run_dir, snapshot_kimg
from stylegan.metrics.specs import parse_metrics

Hook = Callable[[Path | None, dict[str, Any]], dict[str, float]]


def training_hook(names: Sequence[str], *, detector_dir: str | os.PathLike | None = None, num_gen: int | None = None,
                  seed: int = 0, mirror: bool | None = None, progress: bool = True,
                  warn: Callable[[str], None] | None = None) -> Hook:
    """A ``metrics_fn(snapshot_path, context) -> {name: value}`` computing ``names`` at each snapshot.

    Bad names and missing detectors raise StyleGANError here, before training starts. ``mirror`` None
    takes it from the training dataset (whether it appends x-flipped copies).
    """
    specs = parse_metrics(list(names), num_gen)
    for detector in sorted({s.detector for s in specs}):
        try:
            detector_file(detector, detector_dir, progress=progress)  # download (or find) now, not after hours
        except StyleGANError as e:  # say which setting needs it: the user asked for metrics, not a detector
            needing = ",".join(s.name for s in specs if s.detector == detector)
            raise StyleGANError(f"{setting('names', '--metrics')} {needing}: {e.what}", e.fix) from None

    def hook(snapshot_path: Path | None, context: dict[str, Any]) -> dict[str, float]:
        dataset = context["dataset"]
        flipped = mirror if mirror is not None else bool(len(dataset) and dataset.is_flipped(len(dataset) - 1))
        rank, world = context.get("rank", 0), context.get("world", 1)
        results = evaluate(specs, context["G_ema"], dataset, mirror=flipped, device=context.get("device"),
                           detector_dir=detector_dir, seed=seed, rank=rank, world=world,
                           progress=progress and rank == 0, warn=warn,
                           network=snapshot_path.name if snapshot_path is not None else None,
                           snapshot_kimg=snapshot_kimg(snapshot_path, context.get("cur_nimg")))
        values = {}
        for r in results:
            if rank == 0 and snapshot_path is not None:
                report_to_run_dir(Path(snapshot_path).parent, r)
            values.update(r.named_values())
        return values

    return hook
