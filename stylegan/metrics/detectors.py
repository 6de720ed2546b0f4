"""Feature detectors behind the published numbers: Inception-v3 (FID/KID/IS) and VGG16 (PR, PPL, projector).

Both are the TorchScript files the official StyleGAN2-ADA metrics use. They are found, in order, in
``detector_dir`` (argument), ``$STYLEGAN_DETECTOR_DIR`` (offline machines: a folder holding files of these
names; nothing is downloaded then), or the download cache (fetched once by URL). TorchScript archives hold
no Python code to run: ``torch.jit.load`` interprets only TorchScript.

Calling conventions (what each detector expects and returns):

* Inception, ``inception_features``: uint8 NCHW RGB in [0, 255], any size → pool features ``[N, 2048]``;
  ``inception_probabilities``: → softmax over 1008 classes without the output bias ``[N, 1008]`` (for IS).
* VGG16, ``vgg16_features``: uint8 NCHW RGB → fc7 features ``[N, 4096]`` (for precision/recall);
  ``lpips_features``: float NCHW RGB in [0, 255] at its own size → LPIPS-style features whose squared L2
  distance is the perceptual distance (PPL, projector).

Grayscale images (1 channel) are repeated to RGB before they reach a detector.
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from stylegan.errors import StyleGANError, setting
from stylegan.formats.cache import cache_dir, download
from stylegan.limits import shorten

DETECTOR_DIR_ENV = "STYLEGAN_DETECTOR_DIR"
_CDN = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics"


@dataclass(frozen=True)
class DetectorSpec:
    name: str  # our short name
    file: str  # the official file name, looked up in detector folders
    url: str  # where the official file is published


DETECTORS: dict[str, DetectorSpec] = {
    "inception": DetectorSpec("inception", "inception-2015-12-05.pt", f"{_CDN}/inception-2015-12-05.pt"),
    "vgg16": DetectorSpec("vgg16", "vgg16.pt", f"{_CDN}/vgg16.pt"),
}


def _spec(name: str) -> DetectorSpec:
    if name not in DETECTORS:
        raise StyleGANError(f"unknown feature detector {name!r}", f"use one of: {', '.join(DETECTORS)}")
    return DETECTORS[name]


def _offline_hint(spec: DetectorSpec) -> str:
    return (f"download {spec.url} on a machine with internet and pass its folder as {setting('detector_dir')} "
            f"or ${DETECTOR_DIR_ENV}")


def detector_file(name: str, detector_dir: str | os.PathLike | None = None, *, progress: bool = True) -> Path:
    """The local file of detector ``name`` ('inception' or 'vgg16'), downloading it only if no folder is given.

    A given folder (argument, else ``$STYLEGAN_DETECTOR_DIR``) must hold the file: nothing is downloaded then.
    """
    spec = _spec(name)
    folder = detector_dir if detector_dir is not None else os.environ.get(DETECTOR_DIR_ENV) or None
    if folder is not None:
        path = Path(folder).expanduser() / spec.file
        if not path.is_file():
            raise StyleGANError(f"feature detector {spec.file} is not in {folder}",
                                f"put the file there (from {spec.url}), or leave {setting('detector_dir')} and "
                                f"${DETECTOR_DIR_ENV} unset to download it")
        return path
    try:
        return download(spec.url, progress=progress, validate=_check_torchscript)
    except StyleGANError as e:
        raise StyleGANError(f"cannot get feature detector {spec.file}: {e.what}", _offline_hint(spec)) from None


def _jit_load(path: str, device: str) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        # The official detectors are TorchScript files; newer PyTorch warns that TorchScript is deprecated.
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(path, map_location=device).eval()


def _load_failure(error: BaseException) -> str:
    """Why torch.jit.load refused a file, in a few whole words (PyTorch appends paragraphs of advice)."""
    text = " ".join(str(error).split())
    first = text.split(". ", 1)[0]
    return shorten(first or type(error).__name__, 120)


def _check_torchscript(path: Path) -> None:
    """Accept a download only if it loads as a TorchScript module (so no error page or cut file is cached)."""
    try:
        _jit_load(str(path), "cpu")
    except Exception as e:  # noqa: BLE001 — whatever the reader raises, the file is not a detector
        raise StyleGANError(f"{path} is not a TorchScript file ({_load_failure(e)})",
                            "download it again") from None


@functools.lru_cache(maxsize=8)
def _load_script(path: str, mtime_ns: int, device: str) -> torch.jit.ScriptModule:
    del mtime_ns  # part of the cache key only: a replaced file is loaded again
    return _jit_load(path, device)


def _is_cached_download(path: Path) -> bool:
    try:
        return path.resolve().parent == cache_dir().resolve()
    except OSError:
        return False


def load_detector(name: str, *, detector_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                  progress: bool = True) -> torch.jit.ScriptModule:
    """Detector ``name`` as a TorchScript module on ``device``, in eval mode (loaded once per file and device)."""
    spec = _spec(name)
    path = detector_file(name, detector_dir, progress=progress)
    try:
        return _load_script(str(path), path.stat().st_mtime_ns, str(torch.device(device)))
    except Exception as e:  # noqa: BLE001 — whatever the reader raises, the file is not a usable detector
        reason = _load_failure(e)
        if _is_cached_download(path):
            raise StyleGANError(f"feature detector {path} (downloaded from {spec.url}) is not a readable "
                                f"TorchScript file ({reason})",
                                f"delete {path} and it is downloaded again on the next run, or "
                                f"{_offline_hint(spec)}") from None
        raise StyleGANError(f"feature detector {path} is not a readable TorchScript file ({reason})",
                            f"replace it with a fresh copy of {spec.url}") from None


def as_rgb(images: torch.Tensor) -> torch.Tensor:
    """NCHW images with 1 or 3 channels → 3 channels (grayscale repeated)."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected NCHW images with 1 or 3 channels, got shape {list(images.shape)}")
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def _uint8_rgb(images: torch.Tensor) -> torch.Tensor:
    if images.dtype != torch.uint8:
        raise ValueError(f"detectors take uint8 images in [0, 255], got {images.dtype}")
    return as_rgb(images)


def inception_features(detector: torch.jit.ScriptModule, images: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW → Inception pool features ``[N, 2048]`` (float32)."""
    return detector(_uint8_rgb(images), return_features=True)


def inception_probabilities(detector: torch.jit.ScriptModule, images: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW → class probabilities ``[N, 1008]`` computed without the output bias, as IS uses them."""
    return detector(_uint8_rgb(images), no_output_bias=True)


def vgg16_features(detector: torch.jit.ScriptModule, images: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW → VGG16 fc7 features ``[N, 4096]``, as precision/recall uses them."""
    return detector(_uint8_rgb(images), return_features=True)


def lpips_features(detector: torch.jit.ScriptModule, images: torch.Tensor) -> torch.Tensor:
    """float NCHW in [0, 255] → LPIPS features; ``((a - b) ** 2).sum(1)`` is the perceptual distance."""
    return detector(as_rgb(images.to(torch.float32)), resize_images=False, return_lpips=True)
