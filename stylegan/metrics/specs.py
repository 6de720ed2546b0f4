"""The metrics by their official names, with the official constants, and parsing of metric lists.

``NAME@N`` (e.g. ``fid50k_full@1000``, ``ppl_wend@2k``) or ``num_gen=N`` runs a quick version with N
generated images (PPL: N samples); the real-image side stays as the official metric defines it.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Sequence

from stylegan.errors import StyleGANError, setting


@dataclass(frozen=True)
class MetricSpec:
    """One metric and its protocol.

    ``full`` metrics use the dataset without x-flips and all of it up to ``max_real``; the others (the
    legacy ones) use the first ``max_real`` images of the dataset as mirrored by ``--mirror`` and need
    that many. ``detector`` is a key of ``stylegan.metrics.detectors.DETECTORS`` ('inception', 'vgg16',
    'inception_pt', 'vgg16_tv', ...).
    """

    name: str
    kind: str  # fid | kid | pr | is | ppl | ls
    detector: str
    num_gen: int = 50000  # generated images (PPL: samples)
    max_real: int | None = None  # real images: None = all of them
    full: bool = True
    num_subsets: int = 100  # KID
    max_subset_size: int = 1000  # KID
    k: int = 3  # PR: neighbourhood size
    row_batch: int = 10000  # PR: distance chunk rows
    col_batch: int = 10000  # PR: distance chunk columns
    num_splits: int = 10  # IS
    space: str = "w"  # PPL: 'z' (slerp) or 'w' (lerp)
    sampling: str = "end"  # PPL: 'full' (t ~ U[0, 1]) or 'end' (t = 0)
    crop: bool = False  # PPL: keep the central face region
    epsilon: float = 1e-4  # PPL: step
    ppl_batch: int = 2  # PPL: pairs per synthesis call, which share one random noise draw

    @property
    def needs_real(self) -> bool:
        return self.kind in ("fid", "kid", "pr")

    @property
    def quick(self) -> bool:
        return self.name not in OFFICIAL or self.num_gen != OFFICIAL[self.name].num_gen

    @property
    def label(self) -> str:
        """The name as shown and stored: ``fid50k_full``, or ``fid50k_full@1000`` for a quick version."""
        return f"{self.name}@{self.num_gen}" if self.quick else self.name

    @property
    def result_keys(self) -> tuple[str, ...]:
        if self.kind == "pr":
            return (f"{self.name}_precision", f"{self.name}_recall")
        if self.kind == "is":
            return (f"{self.name}_mean", f"{self.name}_std")
        if self.kind == "ls":
            return (f"{self.name}_z", f"{self.name}_w")
        return (self.name,)

    @property
    def min_gen(self) -> int:
        return {"fid": 2, "kid": 2, "pr": self.k + 1, "is": self.num_splits, "ppl": 1,
                "ls": 2}[self.kind]


OFFICIAL: dict[str, MetricSpec] = {s.name: s for s in [
    # Primary metrics of StyleGAN2-ADA.
    MetricSpec("fid50k_full", "fid", "inception", max_real=None),
    MetricSpec("kid50k_full", "kid", "inception", max_real=1000000),
    MetricSpec("pr50k3_full", "pr", "vgg16", max_real=200000),
    MetricSpec("ppl2_wend", "ppl", "vgg16", space="w", sampling="end", crop=False),
    MetricSpec("is50k", "is", "inception"),
    # Legacy metrics (StyleGAN, StyleGAN2 papers).
    MetricSpec("fid50k", "fid", "inception", max_real=50000, full=False),
    MetricSpec("kid50k", "kid", "inception", max_real=50000, full=False),
    MetricSpec("pr50k3", "pr", "vgg16", max_real=50000, full=False),
    MetricSpec("ppl_zfull", "ppl", "vgg16", space="z", sampling="full", crop=True),
    MetricSpec("ppl_wfull", "ppl", "vgg16", space="w", sampling="full", crop=True),
    MetricSpec("ppl_zend", "ppl", "vgg16", space="z", sampling="end", crop=True),
    MetricSpec("ppl_wend", "ppl", "vgg16", space="w", sampling="end", crop=True),
    # The same protocols with the PyTorch-ecosystem detectors MMGeneration reports with (suffix _pt):
    # pytorch-fid's FID Inception, and torchvision's VGG16 for precision/recall.
    MetricSpec("fid50k_full_pt", "fid", "inception_pt", max_real=None),
    MetricSpec("fid50k_pt", "fid", "inception_pt", max_real=50000, full=False),
    MetricSpec("pr50k3_full_pt", "pr", "vgg16_tv", max_real=200000),
    MetricSpec("pr50k3_pt", "pr", "vgg16_tv", max_real=50000, full=False),
    # StyleGAN paper: linear separability with the 40 CelebA-HQ attribute classifiers (half the samples kept).
    MetricSpec("ls", "ls", "celebahq-attributes", num_gen=200000),
]}


def known_metrics() -> list[str]:
    return list(OFFICIAL)


def _count(text: str, where: str) -> int:
    m = re.fullmatch(r"(\d+)([kK]?)", text.strip())
    if m is None or int(m.group(1)) == 0:
        raise StyleGANError(f"{where}: {text!r} is not a positive count", "write e.g. fid50k_full@1000 or @2k")
    return int(m.group(1)) * (1000 if m.group(2) else 1)


def parse_metrics(names: str | Sequence[str | MetricSpec], num_gen: int | None = None) -> list[MetricSpec]:
    """``'fid50k_full,kid50k_full@1k'`` (or a list of names) → specs; ``num_gen`` applies where no ``@N`` is given.

    MetricSpec items pass through unchanged (custom protocols, e.g. in tests). Unknown names raise
    StyleGANError listing the known ones; duplicates are dropped.
    """
    raw = names.split(",") if isinstance(names, str) else list(names)
    items = [n if isinstance(n, MetricSpec) else n.strip() for n in raw if isinstance(n, MetricSpec) or n.strip()]
    if not items:
        raise StyleGANError("no metrics given", f"use one or more of: {', '.join(known_metrics())}")
    if num_gen is not None and num_gen < 1:
        raise StyleGANError(f"{setting('num_gen')} is {num_gen}, not a positive count",
                            f"set {setting('num_gen')} to at least 1, or leave it out")
    specs: list[MetricSpec] = []
    for item in items:
        if isinstance(item, MetricSpec):
            if item not in specs:
                specs.append(item)
            continue
        name, _, count = item.partition("@")
        name = name.strip().lower()
        if name not in OFFICIAL:
            raise StyleGANError(f"unknown metric {name!r}", f"known metrics: {', '.join(known_metrics())}")
        n = _count(count, item) if count else num_gen
        spec = OFFICIAL[name] if n is None else dataclasses.replace(OFFICIAL[name], num_gen=n)
        if n is not None and n < spec.min_gen:
            raise StyleGANError(f"{spec.label}: {n} generated samples are too few",
                                f"{name} needs at least {spec.min_gen}")
        if spec not in specs:
            specs.append(spec)
    return specs
