"""Computing metrics for a generator: the library entry point behind `stylegan metrics` and training snapshots.

:func:`evaluate` runs several metrics with shared work: one pass over the dataset per (x-flip, count)
for all detectors that need it (results cached on disk), one pass of generated images for every
FID/KID/PR/IS metric (they see the same images for the same seed), one pass per PPL metric. Under
torch.distributed each rank does its share; every rank returns the same results. Writing results is
:mod:`stylegan.metrics.reports`' job.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from stylegan.data import ImageDataset, check_dataset_fits
from stylegan.devices import module_device
from stylegan.errors import StyleGANError, setting
from stylegan.metrics.detectors import inception_features, load_detector
from stylegan.metrics.distributed import current_shard
from stylegan.metrics.feature_passes import (
    Detectors,
    GeneratedRequest,
    PassSettings,
    RealRequest,
    StageTimer,
    default_workers,
    fill_generated_statistics,
    fill_real_statistics,
)
from stylegan.metrics.formulas import (
    filtered_mean,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    precision_recall,
)
from stylegan.metrics.linear_separability import AttributeClassifiers, linear_separability, prepare_classifiers
from stylegan.metrics.ppl import ppl_distances
from stylegan.metrics.reports import MetricResult, write_reference_stats
from stylegan.metrics.sampling import LabelPool, frozen_copy
from stylegan.metrics.specs import OFFICIAL, MetricSpec, parse_metrics
from stylegan.metrics.stats import FeatureStats, reference_variant
from stylegan.ops.backends import cuda_arithmetic

Warn = Callable[[str], None]


# ------------------------------------------------------------------------------------- real-image plan

class RealPlan:
    """Which real statistics the metrics need, shared where detector, x-flip and count agree, and the
    warnings each metric's real-image rules produced."""

    def __init__(self):
        self.requests: dict[tuple[str, bool, int], RealRequest] = {}
        self.of: dict[str, RealRequest] = {}  # metric label → its request
        self.warnings: dict[str, list[str]] = {}

    def request(self, detector: str, xflip: bool, num: int, features: bool, user: str) -> RealRequest:
        r = self.requests.setdefault((detector, xflip, num), RealRequest(detector, xflip, num))
        r.need_features |= features
        r.users.append(user)
        return r

    def add_metric(self, s: MetricSpec, base: ImageDataset, mirror: bool) -> None:
        """Apply the official real-image rules for ``s``; raise StyleGANError when the dataset cannot serve it."""
        xflip = mirror and not s.full  # the _full metrics never use x-flips
        available = len(base) * (2 if xflip else 1)
        num = available if s.max_real is None else min(available, s.max_real)
        _check_real_count(s, base, mirror, xflip, available, num)
        self.warnings[s.label] = _real_count_notes(s, base, available, num)
        self.of[s.label] = self.request(s.detector, xflip, num, s.kind in ("kid", "pr"), s.label)


def _check_real_count(s: MetricSpec, base: ImageDataset, mirror: bool, xflip: bool, available: int, num: int) -> None:
    if not s.full and available < s.max_real:
        could_mirror = not mirror and 2 * available >= s.max_real
        raise StyleGANError(
            f"{s.label} compares with {s.max_real} real images, but dataset {base.name} has only {available}"
            + (f" (with {setting('mirror')})" if xflip else ""),
            f"use {s.name}_full, which takes all real images"
            + (f", or set {setting('mirror')} if it was trained with x-flips" if could_mirror else ""))
    minimum = s.k + 1 if s.kind == "pr" else 2
    if num < minimum:
        raise StyleGANError(f"{s.label} needs at least {minimum} real images, dataset {base.name} has {num}",
                            "use a larger dataset")


def _real_count_notes(s: MetricSpec, base: ImageDataset, available: int, num: int) -> list[str]:
    notes = []
    if num < s.num_gen:
        note = (f"{s.label}: dataset {base.name} has {num} real images, fewer than the {s.num_gen} generated; "
                "using all of them")
        if s.kind == "kid" and num < s.max_subset_size:
            note += f" (KID subsets of {num} instead of {s.max_subset_size})"
        notes.append(note)
    if s.full and s.max_real is not None and available > s.max_real:
        notes.append(f"{s.label}: uses the first {s.max_real} of {available} real images, as the official "
                     "metric does")
    return notes


# ------------------------------------------------------------------------------------------ the steps

def _open_dataset(data: str | os.PathLike | ImageDataset, use_labels: bool) -> ImageDataset:
    path = data.path if isinstance(data, ImageDataset) else data
    return ImageDataset(path, use_labels=use_labels)


def _fitting_dataset(specs: list[MetricSpec], G: nn.Module, data: str | os.PathLike | ImageDataset | None,
                     needs_real: list[MetricSpec], exporting: bool) -> ImageDataset | None:
    """The dataset (labels only for a conditional G), checked against G; None when nothing needs one."""
    if data is not None:
        base = _open_dataset(data, use_labels=G.c_dim > 0)
        check_dataset_fits(base, G.img_resolution, G.img_channels, G.c_dim)
        return base
    if needs_real or exporting:
        who = ", ".join(s.label for s in needs_real) or setting("export_stats")
        raise StyleGANError(f"{who} need(s) real images, but no dataset was given",
                            f"pass the training dataset as {setting('data')}")
    if G.c_dim > 0:
        raise StyleGANError(f"the network is conditional (c_dim {G.c_dim}): its labels are drawn from the dataset, "
                            "but no dataset was given", f"pass the training dataset as {setting('data')}")
    return None


def _plan_real(needs_real: list[MetricSpec], base: ImageDataset | None, mirror: bool,
               specs: list[MetricSpec], exporting: bool) -> tuple[RealPlan, RealRequest | None]:
    """The real statistics to get, and which of them ``export_stats`` writes: the first FID metric's, or,
    with no FID metric, those of the whole dataset without x-flips."""
    plan = RealPlan()
    for s in needs_real:
        plan.add_metric(s, base, mirror)
    if not exporting:
        return plan, None
    first_fid = next((s for s in specs if s.kind == "fid" and s.label in plan.of), None)
    if first_fid is not None:
        return plan, plan.of[first_fid.label]
    return plan, plan.request("inception", False, len(base), False, "--export-stats")


def _load_detectors(names: set[str], settings: PassSettings) -> Detectors:
    return {name: load_detector(name, detector_dir=settings.detector_dir, device=settings.device,
                                progress=settings.show_bars) for name in sorted(names)}


def _check_reference(ref: FeatureStats, specs: list[MetricSpec], detectors: Detectors, G: nn.Module,
                     device: torch.device) -> dict[str, list[str]]:
    """Imported FID statistics must come from the FID metric's own Inception variant (where they record it,
    see :func:`reference_variant`) and have its feature count; returns notes per metric label."""
    notes: dict[str, list[str]] = {}
    blank = torch.zeros([1, 3, G.img_resolution, G.img_resolution], dtype=torch.uint8, device=device)
    for s in (s for s in specs if s.kind == "fid"):
        problem, note = reference_variant(ref, s.detector)
        if problem is not None:
            others = [name for name, o in OFFICIAL.items() if o.kind == "fid" and o.full == s.full
                      and o.detector == ref.meta.get("detector")]
            raise StyleGANError(f"{s.label}: {problem}",
                                (f"use {others[0]} with them, or " if others else "use ") +
                                f"reference statistics made with {s.detector} (e.g. {setting('export_stats')} "
                                f"with {s.name})")
        with torch.no_grad():
            width = inception_features(detectors[s.detector], blank).shape[1]
        if ref.mu.size != width:
            raise StyleGANError(f"{s.label}: reference statistics have {ref.mu.size} features but the Inception "
                                f"detector gives {width} ({s.detector})",
                                "use reference statistics made with the same detector")
        if note is not None:
            notes[s.label] = [f"{s.label}: {note}"]
    return notes


def _announce(messages: list[str], settings: PassSettings, warn: Warn | None) -> None:
    if not settings.shard.is_main:
        return
    for message in messages:
        if warn is not None:
            warn(message)
        else:
            warnings.warn(message, stacklevel=3)  # at evaluate's caller


def _plan_generated(specs: list[MetricSpec]) -> tuple[list[GeneratedRequest], dict[str, GeneratedRequest]]:
    """The generated statistics to collect, and metric label → the one it reads (metrics with the same
    detector call and count share one)."""
    shared: dict[tuple[str, int], GeneratedRequest] = {}
    of: dict[str, GeneratedRequest] = {}
    for s in specs:
        if s.kind in ("ppl", "ls"):
            continue  # PPL renders its own path pairs, ls its own samples
        call = "inception-probs" if s.kind == "is" else s.detector
        r = shared.setdefault((call, s.num_gen), GeneratedRequest(call, s.num_gen))
        r.stats.capture_all |= s.kind in ("kid", "pr", "is")
        r.stats.capture_mean_cov |= s.kind == "fid"
        r.users.append(s.label)
        of[s.label] = r
    return list(shared.values()), of


@dataclass
class _Inputs:
    """Everything a metric's formula may read once the passes are done."""

    real: dict[str, RealRequest]
    generated: dict[str, GeneratedRequest]
    ref: FeatureStats | None
    G: nn.Module
    detectors: Detectors
    labels: LabelPool
    seed: int
    settings: PassSettings
    progress: bool
    classifiers: AttributeClassifiers | None = None  # ls


def _fid(s: MetricSpec, inp: _Inputs) -> tuple[list[float], int | None]:
    gen = inp.generated[s.label].stats
    if inp.ref is not None:
        reference, num_real = inp.ref, inp.ref.count or None
    else:
        reference = inp.real[s.label].stats
        num_real = reference.count
    if reference.mu.shape != gen.mu.shape:
        raise StyleGANError(f"{s.label}: reference statistics have {reference.mu.size} features but the Inception "
                            f"detector gives {gen.mu.size}", "use reference statistics made with the same detector")
    return [frechet_distance(gen.mu, gen.sigma, reference.mu, reference.sigma)], num_real


def _kid(s: MetricSpec, inp: _Inputs) -> tuple[list[float], int | None]:
    real, device = inp.real[s.label].stats, inp.settings.device
    value = kernel_inception_distance(real.features.to(device), inp.generated[s.label].stats.features.to(device),
                                      num_subsets=s.num_subsets, max_subset_size=s.max_subset_size, seed=inp.seed)
    return [value], real.count


def _pr(s: MetricSpec, inp: _Inputs) -> tuple[list[float], int | None]:
    real, device = inp.real[s.label].stats, inp.settings.device
    gen = inp.generated[s.label].stats.features[: s.num_gen]
    precision, recall = precision_recall(real.features.to(device), gen.to(device), k=s.k, row_batch=s.row_batch,
                                         col_batch=s.col_batch, shard=inp.settings.shard)
    return [precision, recall], real.count


def _is(s: MetricSpec, inp: _Inputs) -> tuple[list[float], int | None]:
    mean, std = inception_score(inp.generated[s.label].stats.features.numpy(), s.num_splits)
    return [mean, std], None


def _ppl(s: MetricSpec, inp: _Inputs) -> tuple[list[float], int | None]:
    distances = ppl_distances(inp.G, inp.detectors["vgg16"], s, seed=inp.seed, labels=inp.labels,
                              device=inp.settings.device, shard=inp.settings.shard, progress=inp.progress)
    return [filtered_mean(distances)], None


def _ls(s: MetricSpec, inp: _Inputs) -> tuple[list[float], int | None]:
    values = linear_separability(inp.G, inp.classifiers, s, seed=inp.seed, labels=inp.labels,
                                 device=inp.settings.device, shard=inp.settings.shard, progress=inp.progress)
    return list(values), None


_FORMULAS: dict[str, Callable[[MetricSpec, _Inputs], tuple[list[float], int | None]]] = {
    "fid": _fid, "kid": _kid, "pr": _pr, "is": _is, "ppl": _ppl, "ls": _ls,
}


# ---------------------------------------------------------------------------------------- entry points

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
    warn: Warn | None = None,
) -> list[MetricResult]:
    """Compute ``metrics`` (e.g. ``"fid50k_full,kid50k_full"``) for generator ``G`` against dataset ``data``.

    Args:
        G: a generator as ``load_network(...)['G_ema']`` returns it (not modified; a copy runs on ``device``).
        data: dataset ZIP/folder or ImageDataset. Needed for FID/KID/PR, and for conditional networks (labels).
        mirror: the dataset was trained with x-flips: the legacy metrics (fid50k, kid50k, pr50k3) then use
            the mirrored dataset, as officially; the ``_full`` ones never do.
        device: where to run (default: where G's weights are).
        detector_dir: folder holding the detector files: inception-2015-12-05.pt, vgg16.pt, and for the ``_pt``
            metrics pt_inception-2015-12-05-6726825d.pth / vgg16-397923af.pth (else $STYLEGAN_DETECTOR_DIR,
            else download).
        num_gen: generated images (PPL: samples) for quick versions; ``NAME@N`` does the same per metric.
        seed: all randomness (z, labels, noise, KID subsets) derives from it: same seed, same numbers.
        rank, world: this process's share; default: the initialised torch.distributed group, else 1 process.
        cache, cache_dir: reuse real statistics from ``cache_dir`` (default ``<STYLEGAN_CACHE_DIR>/metrics``).
        ref_stats: an .npz with ``mu``/``sigma``, an MMGeneration FID-Reals .pkl, or a FeatureStats, that FID
            uses instead of the dataset. Statistics that record their Inception variant must match the
            metric's (fid50k_full: NVIDIA's; fid50k_full_pt: the PyTorch one); see ``stats.reference_variant``.
        export_stats: write the real Inception statistics of the first FID metric (or, with none, of the
            whole dataset without x-flips) to this .npz (``mu``, ``sigma``, ``count``, and the detector in meta).
        batch: images per detector call; workers: DataLoader workers for real images (default 3 on CUDA, else 0).
        network, snapshot_kimg: recorded in the results.
        warn: receives warnings (default: ``warnings.warn``).
    Returns:
        one MetricResult per metric, in the order asked, identical on every rank.
    Raises:
        StyleGANError for unknown metrics, unfit datasets, too few real images, missing detectors, ...
    """
    specs = parse_metrics(metrics, num_gen)
    device = torch.device(device) if device is not None else module_device(G)
    settings = PassSettings(device=device, shard=current_shard(rank, world), batch=batch,
                            workers=default_workers(device) if workers is None else workers, progress=progress,
                            detector_dir=detector_dir, cache=cache, cache_dir=cache_dir)
    ref = FeatureStats.load(ref_stats) if isinstance(ref_stats, (str, os.PathLike)) else ref_stats

    # Everything that can be wrong is found before any heavy work.
    needs_real = [s for s in specs if s.needs_real and not (s.kind == "fid" and ref is not None)]
    base = _fitting_dataset(specs, G, data, needs_real, export_stats is not None)
    plan, exported = _plan_real(needs_real, base, mirror, specs, export_stats is not None)
    detectors = _load_detectors({s.detector for s in specs if s.kind != "ls"}  # ls has its own classifiers
                                | {r.detector for r in plan.requests.values()}, settings)
    classifiers = prepare_classifiers(specs, G, settings)  # ls: None without it
    ref_notes = _check_reference(ref, specs, detectors, G, device) if ref is not None else {}
    notes = {s.label: plan.warnings.get(s.label, []) + ref_notes.get(s.label, []) for s in specs}
    _announce([m for label in notes for m in notes[label]], settings, warn)

    G = frozen_copy(G, device)
    timer = StageTimer()
    generated, generated_of = _plan_generated(specs)
    inputs = _Inputs(plan.of, generated_of, ref, G, detectors, LabelPool.from_dataset(base, G.c_dim), seed,
                     settings, progress, classifiers)
    with torch.no_grad(), cuda_arithmetic():  # true float32 on every GPU, as the official metrics
        fill_real_statistics(list(plan.requests.values()), base, detectors, settings, timer)
        if generated:
            with timer.stage([u for r in generated for u in r.users]):
                fill_generated_statistics(generated, G, detectors, inputs.labels, seed=seed, settings=settings)
        results = []
        for s in specs:
            with timer.stage([s.label]):
                values, num_real = _FORMULAS[s.kind](s, inputs)
            results.append(MetricResult(s.label, dict(zip(s.result_keys, values)), 0.0, s.num_gen, num_real, seed,
                                        network, snapshot_kimg, notes[s.label]))
    for r in results:
        r.seconds = timer.seconds.get(r.metric, 0.0)
    if exported is not None and settings.shard.is_main:
        write_reference_stats(exported.stats, export_stats)
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
    detector: str = "inception",
) -> FeatureStats:
    """Inception statistics (``mu``, ``sigma``, ``count``) of the first ``max_items`` (default all) images
    of ``data``, x-flipped copies included with ``mirror``; :func:`~stylegan.metrics.reports.write_reference_stats`
    exports them. ``detector``: 'inception' (NVIDIA's) or 'inception_pt' (the PyTorch Inception); it is
    recorded in the statistics' meta."""
    if detector not in ("inception", "inception_pt"):
        raise StyleGANError(f"reference statistics are Inception statistics, not {detector!r}",
                            "use detector 'inception' or 'inception_pt'")
    device = torch.device(device)
    settings = PassSettings(device=device, shard=current_shard(rank, world), batch=batch,
                            workers=default_workers(device) if workers is None else workers, progress=progress,
                            detector_dir=detector_dir, cache=cache, cache_dir=cache_dir)
    base = _open_dataset(data, use_labels=False)
    available = len(base) * (2 if mirror else 1)
    request = RealRequest(detector, mirror, available if max_items is None else min(available, max_items),
                          users=["reference"])
    detectors = _load_detectors({detector}, settings)
    with torch.no_grad(), cuda_arithmetic():
        fill_real_statistics([request], base, detectors, settings, StageTimer())
    return request.stats
