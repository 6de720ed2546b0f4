"""Feature detectors behind the published numbers: Inception-v3 (FID/KID/IS) and VGG16 (PR, PPL, projector).

NVIDIA's (``inception``, ``vgg16``) are the TorchScript files the official StyleGAN2-ADA metrics use;
TorchScript archives hold no Python code to run: ``torch.jit.load`` interprets only TorchScript.
The PyTorch-ecosystem variants MMGeneration measures with (``inception_pt``: pytorch-fid's FID Inception;
``vgg16_tv``: torchvision's VGG16) are plain state dicts (``.pth``, in torch.save's legacy format or its
zip archives): they are read as data by our torch.save reader (never ``torch.load``), checked key by key
and shape by shape against our own architectures (:mod:`stylegan.metrics.inception_pt`,
:mod:`stylegan.metrics.vgg16_tv`), and copied into them.
All are found, in order, in ``detector_dir`` (argument), ``$STYLEGAN_DETECTOR_DIR`` (offline machines: a
folder holding files of these names; nothing is downloaded then), or the download cache (fetched once by
URL, cached only once the file loads as the detector asked for).

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
from typing import Any, Callable

import torch
from torch import nn

from stylegan.errors import StyleGANError, setting
from stylegan.formats.cache import cache_dir, download
from stylegan.formats.torch_files import read_torch_file
from stylegan.limits import quote, shorten
from stylegan.metrics.inception_pt import PyTorchInception
from stylegan.metrics.vgg16_tv import TorchvisionVGG16

DETECTOR_DIR_ENV = "STYLEGAN_DETECTOR_DIR"
_CDN = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics"
_PYTORCH_FID = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights"
_TORCHVISION = "https://download.pytorch.org/models"


@dataclass(frozen=True)
class DetectorSpec:
    name: str  # our short name
    file: str  # the official file name, looked up in detector folders
    url: str  # where the official file is published
    title: str = ""  # what it is, in messages and reports
    architecture: Callable[[], nn.Module] | None = None  # None: a TorchScript file; else our module for a state dict

    @property
    def label(self) -> str:
        return self.title or self.name


DETECTORS: dict[str, DetectorSpec] = {
    "inception": DetectorSpec("inception", "inception-2015-12-05.pt", f"{_CDN}/inception-2015-12-05.pt",
                              "NVIDIA's Inception (inception-2015-12-05.pt)"),
    "vgg16": DetectorSpec("vgg16", "vgg16.pt", f"{_CDN}/vgg16.pt", "NVIDIA's VGG16 (vgg16.pt)"),
    "inception_pt": DetectorSpec("inception_pt", "pt_inception-2015-12-05-6726825d.pth",
                                 f"{_PYTORCH_FID}/pt_inception-2015-12-05-6726825d.pth",
                                 "the PyTorch Inception of pytorch-fid (pt_inception-2015-12-05-6726825d.pth)",
                                 PyTorchInception),
    "vgg16_tv": DetectorSpec("vgg16_tv", "vgg16-397923af.pth", f"{_TORCHVISION}/vgg16-397923af.pth",
                             "torchvision's VGG16 (vgg16-397923af.pth)", TorchvisionVGG16),
}


def _spec(name: str) -> DetectorSpec:
    if name not in DETECTORS:
        raise StyleGANError(f"unknown feature detector {name!r}", f"use one of: {', '.join(DETECTORS)}")
    return DETECTORS[name]


def _offline_hint(spec: DetectorSpec) -> str:
    return (f"download {spec.url} on a machine with internet and pass its folder as {setting('detector_dir')} "
            f"or ${DETECTOR_DIR_ENV}")


def detector_file(name: str, detector_dir: str | os.PathLike | None = None, *, progress: bool = True) -> Path:
    """The local file of detector ``name`` (a key of DETECTORS), downloading it only if no folder is given.

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
        return download(spec.url, progress=progress, validate=functools.partial(_check_download, spec))
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


def _check_download(spec: DetectorSpec, path: Path) -> None:
    """Accept a download only if it loads as the detector asked for (so no error page or cut file is cached)."""
    if spec.architecture is not None:
        weights_module(spec, path, f"the download of {spec.file}")
        return
    try:
        _jit_load(str(path), "cpu")
    except Exception as e:  # noqa: BLE001 — whatever the reader raises, the file is not a detector
        raise StyleGANError(f"{path} is not a TorchScript file ({_load_failure(e)})",
                            "download it again") from None


@functools.lru_cache(maxsize=8)
def _load_script(path: str, mtime_ns: int, device: str) -> torch.jit.ScriptModule:
    del mtime_ns  # part of the cache key only: a replaced file is loaded again
    return _jit_load(path, device)


# ------------------------------------------------------------------------------- state-dict detectors

def _problem_list(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(quote(n, 60) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _checked_weights(records: Any, model: nn.Module, spec: DetectorSpec, source: str) -> dict[str, torch.Tensor]:
    """The file's tensors, once its keys and shapes are exactly those of ``model`` (batch norms' step
    counters may be absent)."""
    fix = f"use {spec.file} from {spec.url}"
    if not isinstance(records, dict):
        raise StyleGANError(f"{source} holds a {type(records).__name__}, not the state dict of {spec.label}", fix)
    expected = model.state_dict()
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    names = [k for k in records if type(k) is str]
    if len(names) != len(records):
        raise StyleGANError(f"{source} has keys that are not names, so it is not the state dict of {spec.label}",
                            fix)
    missing = [k for k in expected if k not in records and k not in optional]
    extra = [k for k in names if k not in expected]
    if missing or extra:
        parts = ([f"{len(missing)} missing ({_problem_list(missing)})"] if missing else []) + \
                ([f"{len(extra)} unexpected ({_problem_list(extra)})"] if extra else [])
        raise StyleGANError(f"{source} is not {spec.label}: its keys differ, {'; '.join(parts)}", fix)
    weights = {}
    for name, value in records.items():
        if not isinstance(value, torch.Tensor):
            raise StyleGANError(f"{source}: {quote(name)} is a {type(value).__name__}, not a tensor", fix)
        want = expected[name]
        if tuple(value.shape) != tuple(want.shape):
            raise StyleGANError(f"{source} is not {spec.label}: {quote(name)} has shape {list(value.shape)}, "
                                f"expected {list(want.shape)}", fix)
        if want.is_floating_point() and not value.is_floating_point():
            raise StyleGANError(f"{source}: {quote(name)} holds {value.dtype}, not floating-point weights", fix)
        weights[name] = value
    return weights


def weights_module(spec: DetectorSpec, path: Path, source: str | None = None) -> nn.Module:
    """Detector ``spec`` (a state-dict one) built from the file ``path``: float32, CPU, eval mode, no grads."""
    source = source or str(path)
    records = read_torch_file(path, source)  # either torch.save format, as plain data
    model = spec.architecture()
    weights = _checked_weights(records, model, spec, source)
    with torch.no_grad():
        model.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in weights.items()},
                              strict=False)
    return model.eval().requires_grad_(False)


@functools.lru_cache(maxsize=8)
def _load_weights(name: str, path: str, mtime_ns: int, device: str) -> nn.Module:
    del mtime_ns  # part of the cache key only: a replaced file is loaded again
    return weights_module(DETECTORS[name], Path(path)).to(device)


def _is_cached_download(path: Path) -> bool:
    try:
        return path.resolve().parent == cache_dir().resolve()
    except OSError:
        return False


def load_detector(name: str, *, detector_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                  progress: bool = True) -> nn.Module:
    """Detector ``name`` on ``device``, in eval mode (loaded once per file and device): a TorchScript module
    for NVIDIA's, our own module for the state-dict ones; all take the calls below."""
    spec = _spec(name)
    path = detector_file(name, detector_dir, progress=progress)
    if spec.architecture is not None:
        try:
            return _load_weights(name, str(path), path.stat().st_mtime_ns, str(torch.device(device)))
        except StyleGANError as e:
            if _is_cached_download(path):
                raise StyleGANError(e.what, f"delete {path} and it is downloaded again on the next run, or "
                                            f"{_offline_hint(spec)}") from None
            raise
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


def inception_features(detector: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW → Inception pool features ``[N, 2048]`` (float32)."""
    return detector(_uint8_rgb(images), return_features=True)


def inception_probabilities(detector: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW → class probabilities ``[N, 1008]`` computed without the output bias, as IS uses them."""
    return detector(_uint8_rgb(images), no_output_bias=True)


def vgg16_features(detector: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW → VGG16 fc7 features ``[N, 4096]``, as precision/recall uses them."""
    return detector(_uint8_rgb(images), return_features=True)


def lpips_features(detector: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """float NCHW in [0, 255] → LPIPS features; ``((a - b) ** 2).sum(1)`` is the perceptual distance."""
    return detector(as_rgb(images.to(torch.float32)), resize_images=False, return_lpips=True)
