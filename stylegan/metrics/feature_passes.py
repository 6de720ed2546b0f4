"""The passes over images that fill :class:`FeatureStats`, each shared by every metric that needs it.

Real images: one pass per (x-flip, count) feeds every detector asked for with those settings; results are
cached on disk (:mod:`stylegan.metrics.stats_cache`). Generated images: one pass of the seeded stream feeds
every (detector call, count) at once, so metrics computed together see the very images they see alone.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from stylegan.data import ImageDataset, dataset_fingerprint
from stylegan.errors import StyleGANError
from stylegan.metrics.detectors import (
    DETECTORS,
    detector_file,
    inception_features,
    inception_probabilities,
    vgg16_features,
)
from stylegan.metrics.distributed import Shard, main_rank_flag
from stylegan.metrics.sampling import LabelPool, generated_batches, group_sizes, real_batches
from stylegan.metrics.stats import FeatureStats
from stylegan.metrics.stats_cache import file_digest, load_cached, save_cached, stats_key, stats_path

Detectors = dict[str, nn.Module]  # TorchScript modules (NVIDIA's files) or our own (state-dict detectors)

# What each detector call returns: features for FID/KID/PR, class probabilities for IS. The detector behind
# a call is the part of its name before the first '-'.
DETECTOR_CALLS: dict[str, Callable[[nn.Module, torch.Tensor], torch.Tensor]] = {
    "inception": inception_features,
    "inception-probs": inception_probabilities,
    "vgg16": vgg16_features,
    "inception_pt": inception_features,
    "vgg16_tv": vgg16_features,
}


def run_call(call: str, detectors: Detectors, images: torch.Tensor) -> torch.Tensor:
    """Features ``[N, D]`` of uint8 ``images`` from the detector call named ``call``."""
    return DETECTOR_CALLS[call](detectors[call.split("-")[0]], images)


class StageTimer:
    """Wall time per metric: each stage's time is shared equally among the metrics that used it."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, users: list[str]) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            sharing = sorted(set(users))
            share = (time.perf_counter() - started) / max(1, len(sharing))
            for user in sharing:
                self.seconds[user] = self.seconds.get(user, 0.0) + share


@dataclass(frozen=True)
class PassSettings:
    """How the passes run: where, this process's share, batch sizes, progress bars, the statistics cache."""

    device: torch.device
    shard: Shard
    batch: int = 64  # images per detector call
    workers: int = 0  # DataLoader workers for real images
    progress: bool = True  # progress bars (rank 0 only)
    detector_dir: str | os.PathLike | None = None
    cache: bool = True  # reuse and store real statistics
    cache_dir: str | os.PathLike | None = None

    @property
    def show_bars(self) -> bool:
        return self.progress and self.shard.is_main


def default_workers(device: torch.device) -> int:
    """DataLoader workers for real images: decoding PNGs keeps up with a GPU only in parallel."""
    return 3 if device.type == "cuda" else 0


@dataclass
class RealRequest:
    """Real statistics that one or more metrics need from one detector."""

    detector: str
    xflip: bool
    num: int
    need_features: bool = False  # KID and PR need every feature row, FID only mean and covariance
    users: list[str] = field(default_factory=list)
    stats: FeatureStats | None = None

    @property
    def key(self) -> tuple[str, bool, int]:
        return self.detector, self.xflip, self.num


@dataclass
class GeneratedRequest:
    """Statistics of one detector call over the first ``num`` images of the generated stream."""

    call: str  # a key of DETECTOR_CALLS
    num: int
    stats: FeatureStats = field(default_factory=lambda: FeatureStats(capture_all=False, capture_mean_cov=False))
    users: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------- real images

def _cache_file(r: RealRequest, base: ImageDataset, fingerprint: str, settings: PassSettings) -> Path:
    digest = file_digest(detector_file(r.detector, settings.detector_dir, progress=False))
    key = stats_key(dataset_fingerprint=fingerprint, detector_digest=digest, xflip=r.xflip, num_items=r.num,
                    resolution=base.resolution)
    return stats_path(base.name, r.detector, key, settings.cache_dir)


def _take_from_cache(r: RealRequest, path: Path, shard: Shard) -> None:
    """Fill ``r`` from the cache when rank 0 finds it there (all ranks take the same branch: the cache is
    expected on a disk they share)."""
    stats = load_cached(path, r.need_features)
    if not main_rank_flag(stats is not None, shard):
        return
    r.stats = stats if stats is not None else load_cached(path, r.need_features)
    if r.stats is None:
        raise StyleGANError(f"rank {shard.rank} cannot read the cached statistics {path}",
                            "put STYLEGAN_CACHE_DIR on a disk all ranks share, or turn the cache off")


def _real_pass(todo: list[RealRequest], base: ImageDataset, xflip: bool, num: int, detectors: Detectors,
               settings: PassSettings) -> None:
    """One pass over the first ``num`` items of ``base`` (mirrored copies appended with ``xflip``) filling
    every request in ``todo``."""
    shard = settings.shard
    dataset = ImageDataset(base.path, xflip=xflip, use_labels=False)
    for r in todo:
        r.stats = FeatureStats(capture_all=r.need_features, capture_mean_cov=True, capacity=len(shard.units(num)))
    names = ", ".join(sorted({r.detector for r in todo}))
    with tqdm(total=num, desc=f"real images ({names})", unit="img", disable=not settings.show_bars,
              leave=False) as bar:
        for images in real_batches(dataset, num, shard=shard, batch=settings.batch, workers=settings.workers):
            images = images.to(settings.device)
            for r in todo:
                r.stats.append(run_call(r.detector, detectors, images))
            bar.update(len(images) * shard.world)
    for r in todo:
        r.stats.finish(shard, np.ones([num], dtype=np.int64))


def fill_real_statistics(requests: list[RealRequest], base: ImageDataset | None, detectors: Detectors,
                         settings: PassSettings, timer: StageTimer) -> None:
    """Give every request its ``stats``: from the cache if allowed and present, else computed (and cached)."""
    if not requests:
        return
    fingerprint = dataset_fingerprint(base.path)
    cache_files = {r.key: _cache_file(r, base, fingerprint, settings) for r in requests}
    if settings.cache:
        for r in requests:
            with timer.stage(r.users):
                _take_from_cache(r, cache_files[r.key], settings.shard)
    passes: dict[tuple[bool, int], list[RealRequest]] = {}
    for r in requests:
        if r.stats is None:
            passes.setdefault((r.xflip, r.num), []).append(r)
    for (xflip, num), todo in passes.items():
        with timer.stage([u for r in todo for u in r.users]):
            _real_pass(todo, base, xflip, num, detectors, settings)
            for r in todo:
                # The detector (its name says the Inception variant) travels with exported statistics, so a
                # FID against them with the other variant is refused instead of silently off.
                r.stats.meta = dict(detector=r.detector, detector_file=DETECTORS[r.detector].file,
                                    dataset=str(base.path), dataset_fingerprint=fingerprint, xflip=r.xflip,
                                    num_items=num)
                if settings.cache and settings.shard.is_main:
                    save_cached(r.stats, cache_files[r.key])


# -------------------------------------------------------------------------------------- generated images

def fill_generated_statistics(requests: list[GeneratedRequest], G: nn.Module, detectors: Detectors,
                              labels: LabelPool, *, seed: int, settings: PassSettings) -> None:
    """One pass over the generated stream, as long as the longest request; each request sees its first rows."""
    shard = settings.shard
    longest = max(r.num for r in requests)
    for r in requests:  # the rows this rank will append: its groups' rows below r.num
        r.stats.capacity = int(group_sizes(r.num)[shard.rank::shard.world].sum())
    with tqdm(total=longest, desc="generated images", unit="img", disable=not settings.show_bars,
              leave=False) as bar:
        for rows, images in generated_batches(G, longest, seed=seed, labels=labels, device=settings.device,
                                              shard=shard, batch=settings.batch):
            for r in requests:
                wanted = rows < r.num
                if wanted.all():
                    r.stats.append(run_call(r.call, detectors, images))
                elif wanted.any():
                    r.stats.append(run_call(r.call, detectors, images[torch.from_numpy(wanted).to(images.device)]))
            bar.update(min(len(rows) * shard.world, longest - bar.n))
    for r in requests:
        r.stats.finish(shard, group_sizes(r.num))
