"""Linear separability (``ls``, Karras et al. 2019): how well a linear boundary in Z, and in W, predicts
what 40 CelebA-HQ attribute classifiers say about the images.

Protocol (the official metric's): z ~ N(0, I); w = the mapping output (one layer's copy), no truncation;
images rendered with random noise, the generator's raw output in [−1, 1], box-averaged down to the
classifiers' resolution (256² for the official classifiers) when larger. Per attribute, the classifier's
logit ℓ gives p = softmax([ℓ, −ℓ]); the ``num_keep`` samples with the largest max(p) are kept, and their
label argmax(p) is fitted with a linear SVM (scikit-learn's ``LinearSVC`` defaults) on z and on w, which
then predicts those same samples (a failed fit, e.g. one class only, counts as a perfect prediction).
H(label | prediction) in bits comes from the 2×2 joint frequencies (clipped at 0); the result is
2^(Σ over the 40 attributes of H), reported as ``ls_z`` and ``ls_w``. The official protocol generates
200,000 images and keeps 100,000; ``ls@N`` generates N and keeps N // 2.

Networks below the classifiers' resolution are refused: the published numbers never upsample, and an
upsampled image is not what the classifiers were trained on.

Classifiers: ``celebahq-classifier-00-male.pkl`` … ``-39-wearing-necktie.pkl``, found like the feature
detectors: in ``detector_dir``, else ``$STYLEGAN_DETECTOR_DIR`` (offline: nothing is downloaded), else
downloaded once into the cache (a download is cached only after it read as a classifier).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from stylegan.errors import StyleGANError, setting
from stylegan.formats.cache import download
from stylegan.formats.tf_classifier import (
    ATTRIBUTES,
    classifier_file_name,
    load_classifier,
)
from stylegan.metrics.detectors import DETECTOR_DIR_ENV
from stylegan.metrics.distributed import Shard, all_sum, gather_units
from stylegan.metrics.feature_passes import PassSettings
from stylegan.metrics.sampling import (
    GROUP,
    LabelPool,
    group_sizes,
    private_rng,
    unit_seed,
)
from stylegan.metrics.specs import MetricSpec

STREAM = "ls"
CLASSIFIER_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan/networks/metrics"
OFFICIAL_RESOLUTION = 256  # what the official classifiers read
KEEP_FRACTION_NUM, KEEP_FRACTION_DEN = 1, 2  # official: 100,000 kept of 200,000


def classifier_url(index: int) -> str:
    return f"{CLASSIFIER_URL}/{classifier_file_name(index)}"


def num_keep(num_gen: int) -> int:
    """How many of ``num_gen`` samples the SVMs see per attribute (the most confident half)."""
    return max(1, num_gen * KEEP_FRACTION_NUM // KEEP_FRACTION_DEN)


# ----------------------------------------------------------------------------------- the classifiers

def _offline_hint() -> str:
    return (f"download the 40 files {classifier_file_name(0)} … {classifier_file_name(39)} from {CLASSIFIER_URL}/ "
            f"on a machine with internet into one folder and pass it as {setting('detector_dir')} or "
            f"${DETECTOR_DIR_ENV}")


def classifier_files(detector_dir: str | os.PathLike | None = None, *, indices: Sequence[int] = range(40),
                     progress: bool = True) -> list[Path]:
    """The local files of the attribute classifiers ``indices``, downloading them only if no folder is given.

    A given folder (argument, else ``$STYLEGAN_DETECTOR_DIR``) must hold them all: nothing is downloaded then.
    """
    folder = detector_dir if detector_dir is not None else os.environ.get(DETECTOR_DIR_ENV) or None
    if folder is not None:
        paths = [Path(folder).expanduser() / classifier_file_name(i) for i in indices]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            others = f" (and {len(missing) - 1} more of the 40)" if len(missing) > 1 else ""
            raise StyleGANError(f"attribute classifier {missing[0]}{others} is not in {folder}",
                                f"put the file(s) there from {CLASSIFIER_URL}/, or leave "
                                f"{setting('detector_dir')} and ${DETECTOR_DIR_ENV} unset to download them")
        return paths
    paths = []
    for i in indices:
        try:
            paths.append(download(classifier_url(i), progress=progress, validate=load_classifier))
        except StyleGANError as e:
            raise StyleGANError(f"cannot get attribute classifier {classifier_file_name(i)}: {e.what}",
                                _offline_hint()) from None
    return paths


@dataclass
class AttributeClassifiers:
    """The loaded classifiers (``nets[i]`` judges ``ATTRIBUTES[i]``), all reading ``resolution``² RGB images."""

    nets: list[nn.Module]
    names: list[str]
    resolution: int

    def to(self, device: torch.device) -> AttributeClassifiers:
        return AttributeClassifiers([n.to(device) for n in self.nets], self.names, self.resolution)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """float NCHW images at ``resolution``² in [−1, 1] → logits ``[N, num_classifiers]`` (float32)."""
        return torch.cat([net(images) for net in self.nets], dim=1)


def load_classifiers(detector_dir: str | os.PathLike | None = None, *, device: str | torch.device = "cpu",
                     indices: Sequence[int] = range(40), progress: bool = True) -> AttributeClassifiers:
    """The attribute classifiers ``indices`` (default all 40) on ``device``; they must share one resolution."""
    nets, names = [], []
    for i, path in zip(indices, classifier_files(detector_dir, indices=indices, progress=progress)):
        nets.append(load_classifier(path, str(path)))
        names.append(ATTRIBUTES[i])
    sizes = sorted({n.img_resolution for n in nets})
    if len(sizes) != 1:
        raise StyleGANError(f"the attribute classifiers read images of different sizes ({', '.join(map(str, sizes))})",
                            "use the 40 official classifiers, which all read 256x256 images")
    return AttributeClassifiers(nets, names, sizes[0]).to(torch.device(device))


def prepare_classifiers(specs: Sequence[MetricSpec], G: nn.Module,
                        settings: PassSettings) -> AttributeClassifiers | None:
    """The 40 classifiers on the passes' device when ``specs`` include ls (None otherwise), checked against G
    before any heavy work: a missing classifier or a network too small for them fails here."""
    if not any(s.kind == "ls" for s in specs):
        return None
    if (settings.detector_dir or os.environ.get(DETECTOR_DIR_ENV)) is None:
        check_network_fits(G, OFFICIAL_RESOLUTION)  # before downloading 40 files that read 256x256 images
    classifiers = load_classifiers(settings.detector_dir, device=settings.device,
                                   progress=settings.progress and settings.shard.is_main)
    check_network_fits(G, classifiers.resolution)
    return classifiers


def check_network_fits(G: nn.Module, resolution: int) -> None:
    """Refuse networks that draw smaller images than the classifiers read, or non-square/odd multiples."""
    res = G.img_resolution
    if res < resolution:
        raise StyleGANError(f"ls needs images of at least {resolution}x{resolution} (the attribute classifiers' "
                            f"input), but the network draws {res}x{res}; images are not upsampled",
                            f"measure ls on a network of {resolution}x{resolution} or more, such as the FFHQ and "
                            "CelebA-HQ networks")
    if res % resolution:
        raise StyleGANError(f"ls box-averages images down to {resolution}x{resolution}, but {res} is not a multiple "
                            f"of {resolution}", "measure ls on a network whose resolution is a power of two")
    if G.img_channels not in (1, 3):
        raise StyleGANError(f"ls needs RGB (or grayscale) images, the network draws {G.img_channels} channels",
                            "measure ls on an RGB network")


# ------------------------------------------------------------------------------------------ arithmetic

def attribute_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Logits ``[N]`` → ``softmax([ℓ, −ℓ])`` ``[N, 2]`` in float32, as the official metric computes them."""
    logits = logits.to(torch.float32)[:, None]
    return torch.softmax(torch.cat([logits, -logits], dim=1), dim=1)


def most_confident(probabilities: np.ndarray, keep: int) -> np.ndarray:
    """Indices ``[keep]`` of the rows of ``probabilities`` ``[N, 2]`` with the largest max(p): a stable sort, so
    equally confident samples keep their order (the official metric sorts with Python's stable sort)."""
    confidence = probabilities.max(axis=1)
    return np.argsort(-confidence, kind="stable")[:keep]


def svm_predictions(inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """A linear SVM (scikit-learn ``LinearSVC`` defaults) fitted to ``targets`` ``[K]`` (0/1) from ``inputs``
    ``[K, D]``, predicting those same samples; a fit that fails (e.g. a single class) predicts perfectly."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the official metric runs the default 1000 steps
            svm = LinearSVC(random_state=0)  # fixed: the solver's coordinate order is random otherwise
            svm.fit(inputs, targets)
            return svm.predict(inputs)
    except Exception:  # noqa: BLE001 — as officially, any failure to fit means "perfectly predictable"
        return targets.copy()


def joint_frequencies(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """2×2 table ``[prediction, label]`` of the fractions of samples with each (prediction, label) pair."""
    predicted, target = np.asarray(predicted).astype(np.int64), np.asarray(target).astype(np.int64)
    table = np.zeros([2, 2], dtype=np.float64)
    np.add.at(table, (predicted, target), 1.0)
    return table / max(1, len(target))


def conditional_entropy_bits(joint: np.ndarray) -> float:
    """H(label | prediction) in bits from a joint table ``[prediction, label]``: H(label) − I(label; prediction),
    clipped at 0 (rounding can take it just below)."""
    p = np.asarray(joint, dtype=np.float64)
    p = p / p.sum()
    p_pred, p_label = p.sum(axis=1), p.sum(axis=0)
    nz = p > 0
    h_label = -sum(q * np.log2(q) for q in p_label if q > 0)
    mutual = float((p[nz] * np.log2(p[nz] / np.outer(p_pred, p_label)[nz])).sum())
    return max(0.0, h_label - mutual)


def separability(entropies: Sequence[float]) -> float:
    """The score: 2^(Σ H) over the attributes."""
    return float(2.0 ** float(np.sum(entropies)))


def attribute_entropies(probabilities: np.ndarray, latents: dict[str, np.ndarray], keep: int) -> dict[str, float]:
    """For one attribute: probabilities ``[N, 2]`` and latents (space → ``[N, D]``) → space → H in bits."""
    kept = most_confident(probabilities, keep)
    targets = np.argmax(probabilities[kept], axis=1)
    return {space: conditional_entropy_bits(joint_frequencies(svm_predictions(x[kept], targets), targets))
            for space, x in latents.items()}


# ------------------------------------------------------------------------------------------- the pass

def box_downsample(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Square images ``[N, C, R, R]`` → ``[N, C, resolution, resolution]`` by averaging R/resolution pixels
    square (nothing happens at R = resolution)."""
    factor = images.shape[-1] // resolution
    return F.avg_pool2d(images, kernel_size=factor) if factor > 1 else images


def _render_group(G: nn.Module, classifiers: AttributeClassifiers, index: int, seed: int, labels: LabelPool,
                  device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Group ``index`` of the ls stream: (z ``[GROUP, z_dim]``, w ``[GROUP, w_dim]``, logits ``[GROUP, A]``), CPU."""
    s = unit_seed(seed, STREAM, index)
    gen = torch.Generator().manual_seed(s)
    z = torch.randn([GROUP, G.z_dim], generator=gen)
    c = labels.draw(gen, GROUP)
    torch.manual_seed(s)  # the synthesis network's random noise
    ws = G.mapping(z.to(device), c.to(device), truncation_psi=1)
    images = G.synthesis(ws, noise_mode="random", force_fp32=True).to(torch.float32)
    images = box_downsample(images, classifiers.resolution)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return z, ws[:, -1].float().cpu(), classifiers.logits(images).float().cpu()


def generate_samples(G: nn.Module, classifiers: AttributeClassifiers, num: int, *, seed: int, labels: LabelPool,
                     device: torch.device, shard: Shard, progress: bool = False,
                     label: str = "ls") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``num`` samples of the ls stream: z ``[num, z_dim]``, w ``[num, w_dim]``, logits ``[num, A]``
    (float32, sample order; each rank renders its groups, every rank gets all)."""
    sizes = group_sizes(num)
    mine = shard.units(len(sizes))
    bar = tqdm(mine, desc=f"{label} images", unit="group", disable=not (progress and shard.is_main), leave=False)
    parts: list[tuple[torch.Tensor, ...]] = []
    with torch.no_grad(), private_rng(device):
        for g in bar:
            z, w, logits = _render_group(G, classifiers, g, seed, labels, device)
            parts.append((z[: sizes[g]], w[: sizes[g]], logits[: sizes[g]]))
    widths = (G.z_dim, G.w_dim, len(classifiers.nets))
    out = []
    for k, width in enumerate(widths):
        local = torch.cat([p[k] for p in parts]) if parts else torch.zeros([0, width])
        out.append(gather_units(local, sizes, shard).numpy())
    return out[0], out[1], out[2]


def linear_separability(G: nn.Module, classifiers: AttributeClassifiers, spec: MetricSpec, *, seed: int,
                        labels: LabelPool, device: torch.device, shard: Shard | None = None,
                        progress: bool = False) -> tuple[float, float]:
    """(ls_z, ls_w) of generator ``G`` (on ``device``) with ``spec.num_gen`` samples, the most confident half kept.

    The SVM fits are shared out over ranks by attribute; every rank returns the same numbers.
    """
    shard = shard or Shard()
    check_network_fits(G, classifiers.resolution)
    z, w, logits = generate_samples(G, classifiers, spec.num_gen, seed=seed, labels=labels, device=device,
                                    shard=shard, progress=progress, label=spec.label)
    keep = num_keep(spec.num_gen)
    entropies = torch.zeros([2, logits.shape[1]], dtype=torch.float64)
    mine = shard.units(logits.shape[1])
    bar = tqdm(mine, desc=f"{spec.label} SVMs", unit="attribute", disable=not (progress and shard.is_main),
               leave=False)
    for a in bar:
        probabilities = attribute_probabilities(torch.from_numpy(logits[:, a])).numpy()
        h = attribute_entropies(probabilities, {"z": z, "w": w}, keep)
        entropies[0, a], entropies[1, a] = h["z"], h["w"]
    entropies = all_sum(entropies, shard)
    return separability(entropies[0].tolist()), separability(entropies[1].tolist())


__all__ = [
    "CLASSIFIER_URL",
    "AttributeClassifiers",
    "attribute_probabilities",
    "check_network_fits",
    "classifier_files",
    "conditional_entropy_bits",
    "joint_frequencies",
    "linear_separability",
    "load_classifiers",
    "most_confident",
    "num_keep",
    "prepare_classifiers",
    "separability",
]
