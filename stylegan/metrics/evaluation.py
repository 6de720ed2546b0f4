"""Computing metrics for a generator: the library entry point behind `stylegan metrics` and training snapshots.

:func:`evaluate` runs several metrics with shared work: one pass over the dataset per (x-flip, count)
for all detectors that need it (results cached on disk), one pass of generated images for every
FID/KID/PR/IS metric (they see the same images for the same seed), one pass per PPL metric. Under
torch.distributed each rank does its share; every rank returns the same results.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from stylegan.atomic import atomic_path
from stylegan.data import ImageDataset, check_dataset_fits, dataset_fingerprint
from stylegan.errors import StyleGANError
from stylegan.metrics import formulas
from stylegan.metrics.detectors import (
    detector_file,
    inception_features,
    inception_probabilities,
    load_detector,
    vgg16_features,
)
from stylegan.metrics.distributed import Shard, current_shard, main_rank_flag
from stylegan.metrics.ppl import ppl_distances
from stylegan.metrics.sampling import LabelPool, generated_batches, group_sizes, real_batches
from stylegan.metrics.specs import MetricSpec, parse_metrics
from stylegan.metrics.stats import FeatureStats
from stylegan.metrics.stats_cache import file_digest, load_cached, stats_key, stats_path
from stylegan.ops.backends import cuda_arithmetic

# What each detector call returns: features for FID/KID/PR, probabilities for IS.
_CALLS: dict[str, Callable[[torch.jit.ScriptModule, torch.Tensor], torch.Tensor]] = {
    "inception": inception_features,
    "inception-probs": inception_probabilities,
    "vgg16": vgg16_features,
}


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

    def to_json(self) -> dict[str, Any]:
        """The JSON line: metric, value, results, seconds, counts, seed, network, snapshot_kimg, timestamp."""
        return dict(metric=self.metric, value=self.value, results=dict(self.results), seconds=round(self.seconds, 3),
                    num_gen=self.num_gen, num_real=self.num_real, seed=self.seed, network=self.network,
                    snapshot_kimg=self.snapshot_kimg, timestamp=time.time())


@dataclass
class _RealRequest:
    """Real statistics one or more metrics need from one detector."""

    detector: str
    xflip: bool
    num: int
    need_features: bool = False
    users: list[str] = field(default_factory=list)
    stats: FeatureStats | None = None
    cached: bool = False


@dataclass
class _GenConsumer:
    """Generated-image statistics of one detector call over the first ``num`` images."""

    call: str
    num: int
    stats: FeatureStats
    users: list[str] = field(default_factory=list)


class _RealPlan:
    """Which real statistics the metrics need, shared where detector, x-flip and count agree."""

    def __init__(self):
        self.requests: dict[tuple[str, bool, int], _RealRequest] = {}
        self.of: dict[str, _RealRequest] = {}  # metric label → its request
        self.warnings: dict[str, list[str]] = {}

    def request(self, detector: str, xflip: bool, num: int, features: bool, user: str) -> _RealRequest:
        r = self.requests.setdefault((detector, xflip, num), _RealRequest(detector, xflip, num))
        r.need_features |= features
        r.users.append(user)
        return r

    def add_metric(self, s: MetricSpec, base: ImageDataset, mirror: bool) -> None:
        """Apply the official real-image rules for ``s``; raise StyleGANError when the dataset cannot serve it."""
        xflip = mirror and not s.full  # the _full metrics never use x-flips
        available = len(base) * (2 if xflip else 1)
        num = available if s.max_real is None else min(available, s.max_real)
        if not s.full and available < s.max_real:
            could_mirror = not mirror and 2 * available >= s.max_real
            raise StyleGANError(
                f"{s.label} compares with {s.max_real} real images, but dataset {base.name} has only {available}"
                + (" (with --mirror)" if xflip else ""),
                f"use {s.name}_full, which takes all real images"
                + (", or --mirror if it was trained with x-flips" if could_mirror else ""))
        minimum = s.k + 1 if s.kind == "pr" else 2
        if num < minimum:
            raise StyleGANError(f"{s.label} needs at least {minimum} real images, dataset {base.name} has {num}",
                                "use a larger dataset")
        notes = self.warnings.setdefault(s.label, [])
        if num < s.num_gen:
            msg = (f"{s.label}: dataset {base.name} has {num} real images, fewer than the {s.num_gen} generated; "
                   "using all of them")
            if s.kind == "kid" and num < s.max_subset_size:
                msg += f" (KID subsets of {num} instead of {s.max_subset_size})"
            notes.append(msg)
        if s.full and s.max_real is not None and available > s.max_real:
            notes.append(f"{s.label}: uses the first {s.max_real} of {available} real images, as the official "
                         "metric does")
        self.of[s.label] = self.request(s.detector, xflip, num, s.kind in ("kid", "pr"), s.label)


def _open_dataset(data: str | os.PathLike | ImageDataset, use_labels: bool, xflip: bool = False) -> ImageDataset:
    path = data.path if isinstance(data, ImageDataset) else data
    return ImageDataset(path, xflip=xflip, use_labels=use_labels)


def _warn(message: str, sink: Callable[[str], None] | None) -> None:
    if sink is not None:
        sink(message)
    else:
        warnings.warn(message, stacklevel=3)


def evaluate(
    metrics: str | Sequence[str],
    G: nn.Module,
    data: str | os.PathLike | ImageDataset | None = None,
    *,
    mirror: bool = False,
    device: str | torch.device | None = None,
    detector_dir: str | os.PathLike | None = None,
    num_gen: int | None = None,
    seed: int = 0,
    rank: int | None = None,
    world: int | None = None,
    progress: bool = True,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    ref_stats: str | os.PathLike | FeatureStats | None = None,
    export_stats: str | os.PathLike | None = None,
    batch: int = 64,
    workers: int | None = None,
    network: str | None = None,
    snapshot_kimg: float | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[MetricResult]:
    """Compute ``metrics`` (e.g. ``"fid50k_full,kid50k_full"``) for generator ``G`` against dataset ``data``.

    Args:
        G: a generator as ``load_network(...)['G_ema']`` returns it (not modified; a copy runs on ``device``).
        data: dataset ZIP/folder or ImageDataset. Needed for FID/KID/PR, and for conditional networks (labels).
        mirror: the dataset was trained with x-flips: the legacy metrics (fid50k, kid50k, pr50k3) then use
            the mirrored dataset, as officially; the ``_full`` ones never do.
        device: where to run (default: where G is).
        detector_dir: folder holding inception-2015-12-05.pt / vgg16.pt (else $STYLEGAN_DETECTOR_DIR, else download).
        num_gen: generated images (PPL: samples) for quick versions; ``NAME@N`` does the same per metric.
        seed: all randomness (z, labels, noise, KID subsets) derives from it: same seed, same numbers.
        rank, world: this process's share; default: the initialised torch.distributed group, else 1 process.
        cache, cache_dir: reuse real statistics from ``cache_dir`` (default ``<STYLEGAN_CACHE_DIR>/metrics``).
        ref_stats: an .npz (or FeatureStats) with ``mu``/``sigma`` that FID uses instead of the dataset.
        export_stats: write the real Inception statistics of the first FID metric (or, with none, of the
            whole dataset without x-flips) to this .npz (``mu``, ``sigma``, ``count``).
        batch: images per detector call; workers: DataLoader workers for real images (default 3 on CUDA, else 0).
        network, snapshot_kimg: recorded in the results.
        warn: receives warnings (default: ``warnings.warn``).
    Returns:
        one MetricResult per metric, in the order asked, identical on every rank.
    Raises:
        StyleGANError for unknown metrics, unfit datasets, too few real images, missing detectors, ...
    """
    specs = parse_metrics(metrics, num_gen)
    shard = current_shard(rank, world)
    device = torch.device(device) if device is not None else G.mapping.w_avg.device
    if workers is None:
        workers = 3 if device.type == "cuda" else 0
    timer = _StageTimer()
    ref = FeatureStats.load(ref_stats) if isinstance(ref_stats, (str, os.PathLike)) else ref_stats
    fid_from_ref = ref is not None

    # ---- what is needed, checked before any heavy work
    needs_real = [s for s in specs if s.needs_real and not (s.kind == "fid" and fid_from_ref)]
    if data is None:
        if needs_real or export_stats is not None:
            who = ", ".join(s.label for s in needs_real) or "--export-stats"
            raise StyleGANError(f"{who} compare(s) with real images, but no dataset was given",
                                "pass the training dataset with --data PATH")
        if G.c_dim > 0:
            raise StyleGANError(f"the network is conditional (c_dim {G.c_dim}): its labels are drawn from the dataset, "
                                "but no dataset was given", "pass the training dataset with --data PATH")
    base = None
    if data is not None:
        base = _open_dataset(data, use_labels=G.c_dim > 0)
        check_dataset_fits(base, G.img_resolution, G.img_channels, G.c_dim)
    plan = _RealPlan()
    for s in needs_real:
        plan.add_metric(s, base, mirror)
    export_request = None
    if export_stats is not None:
        first_fid = next((s for s in specs if s.kind == "fid" and s.label in plan.of), None)
        export_request = plan.of[first_fid.label] if first_fid is not None else \
            plan.request("inception", False, len(base), False, "--export-stats")
    result_warnings = {s.label: plan.warnings.get(s.label, []) for s in specs}
    requests, real_of = plan.requests, plan.of

    detector_names = {s.detector for s in specs} | {r.detector for r in requests.values()}
    detectors = {name: load_detector(name, detector_dir=detector_dir, device=device, progress=progress and shard.is_main)
                 for name in sorted(detector_names)}
    if ref is not None and any(s.kind == "fid" for s in specs):
        probe = torch.zeros([1, 3, G.img_resolution, G.img_resolution], dtype=torch.uint8, device=device)
        with torch.no_grad():
            dim = inception_features(detectors["inception"], probe).shape[1]
        if ref.mu.size != dim:
            raise StyleGANError(f"reference statistics have {ref.mu.size} features but the Inception detector "
                                f"gives {dim}", "use reference statistics made with the same detector")
    for w in (m for ms in result_warnings.values() for m in ms):
        if shard.is_main:
            _warn(w, warn)

    G = copy.deepcopy(G).eval().requires_grad_(False).to(device)
    labels = LabelPool.from_dataset(base, G.c_dim)

    with torch.no_grad(), cuda_arithmetic():  # true float32 on every GPU, as the official metrics
        # ---- real statistics: cache, else one pass per (x-flip, count) for all detectors that need it
        _real_statistics(requests, base, detectors, detector_dir=detector_dir, device=device, shard=shard,
                         batch=batch, workers=workers, cache=cache, cache_dir=cache_dir, progress=progress,
                         timer=timer)

        # ---- generated statistics: one pass for all FID/KID/PR/IS metrics
        consumers: dict[tuple[str, int], _GenConsumer] = {}
        gen_of: dict[str, _GenConsumer] = {}
        for s in specs:
            if s.kind == "ppl":
                continue
            call = "inception-probs" if s.kind == "is" else s.detector
            c = consumers.setdefault((call, s.num_gen), _GenConsumer(call, s.num_gen, FeatureStats(False, False)))
            c.stats.capture_all |= s.kind in ("kid", "pr", "is")
            c.stats.capture_mean_cov |= s.kind == "fid"
            c.users.append(s.label)
            gen_of[s.label] = c
        if consumers:
            with timer.stage([u for c in consumers.values() for u in c.users]):
                _generated_statistics(list(consumers.values()), G, detectors, labels, seed=seed, device=device,
                                      shard=shard, batch=batch, progress=progress)

        # ---- formulas and PPL
        results = []
        for s in specs:
            with timer.stage([s.label]):
                values, num_real = _compute(s, real_of.get(s.label), gen_of.get(s.label), ref, G, detectors,
                                            labels=labels, seed=seed, device=device, shard=shard, progress=progress)
            results.append(MetricResult(s.label, values, 0.0, s.num_gen, num_real, seed, network, snapshot_kimg,
                                        result_warnings[s.label]))
    for r in results:
        r.seconds = timer.seconds.get(r.metric, 0.0)

    if export_request is not None and shard.is_main:
        stats = export_request.stats
        stats.meta = dict(stats.meta, exported_by="stylegan metrics")
        stats.save(export_stats, with_features=False)
    return results


def reference_stats(
    data: str | os.PathLike | ImageDataset,
    *,
    mirror: bool = False,
    max_items: int | None = None,
    device: str | torch.device = "cpu",
    detector_dir: str | os.PathLike | None = None,
    rank: int | None = None,
    world: int | None = None,
    progress: bool = True,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    batch: int = 64,
    workers: int | None = None,
) -> FeatureStats:
    """Inception statistics (``mu``, ``sigma``, ``count``) of the first ``max_items`` (default all) images
    of ``data``, x-flipped copies included with ``mirror``; ``.save(path)`` exports them."""
    shard = current_shard(rank, world)
    device = torch.device(device)
    base = _open_dataset(data, use_labels=False)
    available = len(base) * (2 if mirror else 1)
    num = available if max_items is None else min(available, max_items)
    r = _RealRequest("inception", mirror, num, users=["reference"])
    detectors = {"inception": load_detector("inception", detector_dir=detector_dir, device=device,
                                            progress=progress and shard.is_main)}
    with torch.no_grad(), cuda_arithmetic():
        _real_statistics({("inception", mirror, num): r}, base, detectors, detector_dir=detector_dir, device=device,
                         shard=shard, batch=batch, workers=(3 if device.type == "cuda" else 0) if workers is None
                         else workers, cache=cache, cache_dir=cache_dir, progress=progress, timer=_StageTimer())
    return r.stats


class _StageTimer:
    """Wall time per metric: each stage's time is shared equally among the metrics that used it."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, users: list[str]) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            users = sorted(set(users))
            for u in users:
                self.seconds[u] = self.seconds.get(u, 0.0) + (time.perf_counter() - t0) / max(1, len(users))


def _real_statistics(requests: dict[tuple[str, bool, int], _RealRequest], base: ImageDataset | None,
                     detectors: dict[str, torch.jit.ScriptModule], *, detector_dir, device: torch.device, shard: Shard,
                     batch: int, workers: int, cache: bool, cache_dir, progress: bool, timer: _StageTimer) -> None:
    if not requests:
        return
    fingerprint = dataset_fingerprint(base.path)
    paths = {}
    for key, r in requests.items():
        digest = file_digest(detector_file(r.detector, detector_dir, progress=False))
        k = stats_key(dataset_fingerprint=fingerprint, detector_digest=digest, xflip=r.xflip, num_items=r.num,
                      resolution=base.resolution)
        paths[key] = stats_path(base.name, r.detector, k, cache_dir)
        if not cache:
            continue
        with timer.stage(r.users):
            stats = load_cached(paths[key], r.need_features)
            # Rank 0 decides, so that all ranks take the same branch (the cache is on a shared disk).
            if main_rank_flag(stats is not None, shard):
                r.stats = stats if stats is not None else load_cached(paths[key], r.need_features)
                if r.stats is None:
                    raise StyleGANError(f"rank {shard.rank} cannot read the cached statistics {paths[key]}",
                                        "put STYLEGAN_CACHE_DIR on a disk all ranks share, or turn the cache off")
                r.cached = True
    passes: dict[tuple[bool, int], list[_RealRequest]] = {}
    for (_, xflip, num), r in requests.items():
        if r.stats is None:
            passes.setdefault((xflip, num), []).append(r)
    for (xflip, num), todo in passes.items():
        with timer.stage([u for r in todo for u in r.users]):
            dataset = _open_dataset(base, use_labels=False, xflip=xflip)
            for r in todo:
                r.stats = FeatureStats(capture_all=r.need_features, capture_mean_cov=True,
                                       capacity=len(shard.units(num)))
            desc = f"real images ({', '.join(sorted({r.detector for r in todo}))})"
            with tqdm(total=num, desc=desc, unit="img", disable=not (progress and shard.is_main), leave=False) as bar:
                for images in real_batches(dataset, num, shard=shard, batch=batch, workers=workers):
                    images = images.to(device)
                    for r in todo:
                        r.stats.append(_CALLS[r.detector](detectors[r.detector], images))
                    bar.update(len(images) * shard.world)
            for r in todo:
                r.stats.finish(shard, np.ones([num], dtype=np.int64))
                r.stats.meta = dict(detector=r.detector, dataset=str(base.path), dataset_fingerprint=fingerprint,
                                    xflip=r.xflip, num_items=num)
                if cache and shard.is_main:
                    try:
                        r.stats.save(paths[(r.detector, r.xflip, r.num)])
                    except OSError:
                        pass  # an unwritable cache only costs time next run


def _generated_statistics(consumers: list[_GenConsumer], G: nn.Module, detectors: dict[str, torch.jit.ScriptModule],
                          labels: LabelPool, *, seed: int, device: torch.device, shard: Shard, batch: int,
                          progress: bool) -> None:
    total = max(c.num for c in consumers)
    for c in consumers:  # rows of this rank's groups below c.num
        c.stats.capacity = int(group_sizes(c.num)[shard.rank::shard.world].sum())
    with tqdm(total=total, desc="generated images", unit="img", disable=not (progress and shard.is_main),
              leave=False) as bar:
        for rows, images in generated_batches(G, total, seed=seed, labels=labels, device=device, shard=shard,
                                              batch=batch):
            for c in consumers:
                keep = rows < c.num
                if keep.any():
                    part = images if keep.all() else images[torch.from_numpy(keep).to(images.device)]
                    c.stats.append(_CALLS[c.call](detectors[c.call.split("-")[0]], part))
            bar.update(min(len(rows) * shard.world, total - bar.n))
    for c in consumers:
        c.stats.finish(shard, group_sizes(c.num))


def _compute(s: MetricSpec, real: _RealRequest | None, gen: _GenConsumer | None, ref: FeatureStats | None,
             G: nn.Module, detectors: dict[str, torch.jit.ScriptModule], *, labels: LabelPool, seed: int,
             device: torch.device, shard: Shard, progress: bool) -> tuple[dict[str, float], int | None]:
    keys = s.result_keys
    if s.kind == "fid":
        reference = ref if ref is not None else real.stats
        g = gen.stats
        if reference.mu.shape != g.mu.shape:
            raise StyleGANError(f"{s.label}: reference statistics have {reference.mu.size} features but the Inception "
                                f"detector gives {g.mu.size}", "use reference statistics made with the same detector")
        value = formulas.frechet_distance(g.mu, g.sigma, reference.mu, reference.sigma)
        return {keys[0]: value}, (reference.count or None) if ref is not None else real.stats.count
    if s.kind == "kid":
        value = formulas.kernel_inception_distance(real.stats.features.to(device), gen.stats.features.to(device),
                                                   num_subsets=s.num_subsets, max_subset_size=s.max_subset_size,
                                                   seed=seed)
        return {keys[0]: value}, real.stats.count
    if s.kind == "pr":
        p, r = formulas.precision_recall(real.stats.features.to(device), gen.stats.features[: s.num_gen].to(device),
                                         k=s.k, row_batch=s.row_batch, col_batch=s.col_batch, shard=shard)
        return {keys[0]: p, keys[1]: r}, real.stats.count
    if s.kind == "is":
        mean, std = formulas.inception_score(gen.stats.features.numpy(), s.num_splits)
        return {keys[0]: mean, keys[1]: std}, None
    dist = ppl_distances(G, detectors["vgg16"], s, seed=seed, labels=labels, device=device, shard=shard,
                         progress=progress)
    return {keys[0]: formulas.filtered_mean(dist)}, None


# ------------------------------------------------------------------------------------------ reporting

def append_result(path: str | os.PathLike, result: MetricResult) -> Path:
    """Append ``result`` as one JSON line to ``path``, atomically (readers never see a half-written line)."""
    path = Path(path)
    old = path.read_bytes() if path.is_file() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    with atomic_path(path) as tmp:
        tmp.write_bytes(old + (json.dumps(result.to_json()) + "\n").encode())
    return path


def report_to_run_dir(run_dir: str | os.PathLike, result: MetricResult) -> Path:
    """Append ``result`` to ``<run_dir>/metric-<name>.jsonl`` (the official file name) and return that path."""
    return append_result(Path(run_dir) / f"metric-{result.metric}.jsonl", result)


def format_table(results: Sequence[MetricResult]) -> str:
    """A plain-text table: one row per result value, with the metric's time and image counts."""
    rows = [("metric", "value", "time", "images")]
    for r in results:
        suffix = r.metric[r.metric.index("@"):] if "@" in r.metric else ""
        images = f"{r.num_gen} gen" + (f", {r.num_real} real" if r.num_real else "")
        for i, (key, value) in enumerate(r.results.items()):
            rows.append((key + suffix, f"{value:.6g}", f"{r.seconds:.1f}s" if i == 0 else "", images if i == 0 else ""))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.rjust(w) if j == 1 else cell.ljust(w) for j, (cell, w) in enumerate(zip(row, widths)))
             .rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
