"""Feature statistics: running float64 mean/covariance (memory independent of the count), optionally all
features, and their ``.npz`` form (cache files, exported/imported reference statistics).

An ``.npz`` holds ``mu`` ``[D]`` and ``sigma`` ``[D, D]`` (float64; the population covariance
``E[x xᵀ] − mu muᵀ`` the StyleGAN2-ADA metrics use), ``count`` (images), optionally ``features``
``[count, D]`` (float32), and ``meta`` (a JSON string: detector — which records the Inception variant —,
dataset, options). Files with only ``mu``/``sigma`` (pytorch-fid, clean-fid) are read too; their
variant is unknown. MMGeneration's FID-Reals ``.pkl`` files (a pickled dict ``{'mean', 'cov', 'size',
'name'}``) are read by the restricted unpickler with plain data and numpy arrays only: nothing in them is
run. How a variant recorded (or not) is checked against a metric: :func:`reference_variant`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from stylegan.atomic import atomic_path
from stylegan.data.archives import NpzArchive
from stylegan.errors import StyleGANError
from stylegan.formats.unpickler import load_pickle_file, restricted_load_numpy
from stylegan.limits import MAX_JSON_BYTES, load_json, quote
from stylegan.metrics.distributed import Shard, all_max, all_sum, gather_units


class FeatureStats:
    """Accumulates ``[N, D]`` feature batches: float64 sums (for mean/cov) and, if asked, the features."""

    def __init__(self, capture_all: bool = False, capture_mean_cov: bool = True, capacity: int | None = None):
        """``capacity``: the number of rows this process will append, if known; captured features then go
        straight into one preallocated array instead of being concatenated at the end (half the peak memory)."""
        self.capture_all, self.capture_mean_cov = capture_all, capture_mean_cov
        self.capacity = capacity
        self._buffer: torch.Tensor | None = None
        self._captured = 0  # rows appended to the buffer / parts
        self.count = 0
        self.dim: int | None = None
        self._sum: torch.Tensor | None = None
        self._outer: torch.Tensor | None = None
        self._parts: list[torch.Tensor] = []
        self._features: torch.Tensor | None = None  # set once finished or loaded
        self._mu: np.ndarray | None = None
        self._sigma: np.ndarray | None = None
        self.meta: dict = {}

    def append(self, x: torch.Tensor) -> None:
        """Add features ``[n, D]`` (any float dtype and device)."""
        if x.ndim != 2:
            raise ValueError(f"features must be [N, D], got {list(x.shape)}")
        if self.dim is None:
            self.dim = int(x.shape[1])
        elif x.shape[1] != self.dim:
            raise ValueError(f"feature size changed from {self.dim} to {x.shape[1]}")
        if self.capture_all:
            rows = x.detach().to("cpu", torch.float32)
            if self.capacity is not None and self._captured == 0:
                self._buffer = torch.empty([self.capacity, self.dim], dtype=torch.float32)
            if self._buffer is not None and self._captured + len(x) <= len(self._buffer):
                self._buffer[self._captured: self._captured + len(x)] = rows
            else:
                if self._buffer is not None:  # more rows than announced: fall back to a list
                    self._parts, self._buffer = [self._buffer[: self._captured]], None
                self._parts.append(rows)
            self._captured += len(x)
        self.count += len(x)
        if self.capture_mean_cov:
            # float64 where the features are (CPU for MPS, which has no float64).
            x64 = x.detach().to("cpu" if x.device.type == "mps" else x.device, torch.float64)
            if self._sum is None:
                self._sum = torch.zeros([self.dim], dtype=torch.float64, device=x64.device)
                self._outer = torch.zeros([self.dim, self.dim], dtype=torch.float64, device=x64.device)
            self._sum += x64.sum(dim=0)
            self._outer.addmm_(x64.T, x64)

    def finish(self, shard: Shard, unit_sizes: np.ndarray | None = None) -> "FeatureStats":
        """Combine the ranks' shares: sums are added, captured features gathered into unit order."""
        dim = int(all_max(torch.tensor([float(self.dim or 0)]), shard).item())
        if self.dim is None:  # this rank got no units; it joins the collectives with empty shares
            self.dim = dim
        if self.capture_mean_cov:
            if self._sum is None:
                self._sum = torch.zeros([dim], dtype=torch.float64)
                self._outer = torch.zeros([dim, dim], dtype=torch.float64)
            total = int(all_sum(torch.tensor([self.count], dtype=torch.float64), shard).item())
            s = all_sum(self._sum, shard).cpu().numpy()
            outer = all_sum(self._outer, shard).cpu().numpy()
            if total > 0:
                self._mu = s / total
                self._sigma = outer / total - np.outer(self._mu, self._mu)
            self.count = total
            self._sum = self._outer = None
        if self.capture_all:
            if self._buffer is not None:
                local = self._buffer[: self._captured]
            else:
                local = torch.cat(self._parts) if self._parts else torch.zeros([0, dim])
            self._buffer = None
            if unit_sizes is None:
                if shard.world > 1:
                    raise ValueError("gathering features from several ranks needs the unit sizes")
                unit_sizes = np.ones([len(local)], dtype=np.int64)
            self._features = gather_units(local, unit_sizes, shard)
            self._parts = []
            self.count = len(self._features)
        return self

    # ------------------------------------------------------------------------------ results

    @property
    def mu(self) -> np.ndarray:
        if self._mu is None:
            self._mean_cov_from_features()
        return self._mu

    @property
    def sigma(self) -> np.ndarray:
        if self._sigma is None:
            self._mean_cov_from_features()
        return self._sigma

    @property
    def has_features(self) -> bool:
        return self._features is not None

    @property
    def features(self) -> torch.Tensor:
        """All features ``[count, D]`` float32 on the CPU, in dataset/sample order."""
        if self._features is None:
            raise ValueError("these statistics hold no per-image features (capture_all was off)")
        return self._features

    def _mean_cov_from_features(self) -> None:
        if self._features is None:
            raise ValueError("no mean/covariance: statistics are unfinished or empty")
        x = self._features.double()
        self._mu = x.mean(dim=0).numpy()
        self._sigma = (x.T @ x / len(x)).numpy() - np.outer(self._mu, self._mu)

    @classmethod
    def from_arrays(cls, mu: np.ndarray, sigma: np.ndarray, count: int, features: torch.Tensor | None = None,
                    meta: dict | None = None) -> "FeatureStats":
        s = cls(capture_all=features is not None, capture_mean_cov=True)
        s._mu, s._sigma, s.count = np.asarray(mu, np.float64), np.asarray(sigma, np.float64), int(count)
        s.dim = int(s._mu.shape[0])
        s._features = features
        s.meta = dict(meta or {})
        return s

    # ------------------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike, *, with_features: bool = True) -> Path:
        """Write ``mu``, ``sigma``, ``count`` (+ ``features``, ``meta``) to an ``.npz``, atomically."""
        path = Path(path)
        arrays = dict(mu=self.mu, sigma=self.sigma, count=np.int64(self.count),
                      meta=np.array(json.dumps(self.meta, sort_keys=True)))
        if with_features and self.has_features:
            arrays["features"] = self.features.numpy()
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FeatureStats":
        """Read an ``.npz`` written by :meth:`save` or another FID tool (``mu``, ``sigma`` at least).

        Each array's dtype and shape are checked from its header before its data is read (floats;
        ``mu`` [D], ``sigma`` [D, D], ``features`` [N, D] with D up to ``MAX_FEATURE_DIM``); ``meta`` is
        JSON within the size and depth limits. Every problem is one StyleGANError line.
        """
        path = Path(path)
        fix = "give an .npz with mu [D] and sigma [D, D], e.g. one written by `stylegan metrics --export-stats`"
        if not path.exists():
            raise StyleGANError(f"reference statistics {path} do not exist", fix)
        if _starts_like_a_pickle(path):
            return cls._load_fid_reals(path)

        def fail(reason: str) -> StyleGANError:
            return StyleGANError(f"reference statistics {path} are not a readable .npz ({reason})", fix)

        with NpzArchive(path, fail) as z:
            missing = [k for k in ("mu", "sigma") if k not in z]
            if missing:
                raise StyleGANError(f"reference statistics {path} lack {', '.join(missing)}", fix)
            mu = z.array("mu", "fiu", _vector_problem).astype(np.float64).reshape(-1)
            dim = mu.size

            def square(shape: tuple) -> None:
                if shape != (dim, dim):
                    raise StyleGANError(f"reference statistics {path}: sigma is {list(shape)} but mu has {dim} "
                                        "entries", fix)

            sigma = z.array("sigma", "fiu", square).astype(np.float64)
            count = int(z.array("count", "iuf", lambda shape: None if shape in ((), (1,)) else
                                f"has shape {list(shape)}, expected a single number").reshape(-1)[0]) \
                if "count" in z else 0
            features = None
            if "features" in z:
                rows = z.array("features", "f", lambda shape: None if len(shape) == 2 and shape[1] == dim else
                               f"has shape {list(shape)}, expected [N, {dim}]")
                features = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))
            meta = {}
            if "meta" in z:
                text = z.array("meta", "U", lambda shape: None if shape == () else
                               f"has shape {list(shape)}, expected one string", max_bytes=4 * MAX_JSON_BYTES,
                               bound_stored=True)
                meta = load_json(str(text[()]), f"the meta of reference statistics {path}", fix)
                if not isinstance(meta, dict):
                    raise StyleGANError(f"the meta of reference statistics {path} is not a JSON object", fix)
        return cls.from_arrays(mu, sigma, count, features, meta)

    @classmethod
    def _load_fid_reals(cls, path: Path) -> "FeatureStats":
        """An MMGeneration FID-Reals pickle: ``{'mean': [D], 'cov': [D, D], 'size': int, 'name': str}``.

        Only plain values and numpy arrays can come out of it (anything else is refused by name, nothing
        run); its variant is not recorded, and MMGeneration makes them with the PyTorch Inception unless told
        otherwise, so ``meta`` says that as an assumption."""
        fix = "give an MMGeneration FID-Reals .pkl ({'mean', 'cov', 'size', 'name'}) or an .npz with mu and sigma"
        if path.stat().st_size > MAX_FID_REALS_BYTES:
            raise StyleGANError(f"reference statistics {path} are {path.stat().st_size} bytes, more than a "
                                f"{MAX_FEATURE_DIM}-feature covariance takes (MAX_FID_REALS_BYTES)", fix)
        data = load_pickle_file(path, f"reference statistics {path}", restricted_load_numpy)
        if not isinstance(data, dict) or not {"mean", "cov"} <= set(data):
            what = f"a dict with keys {quote(sorted(map(str, data)))}" if isinstance(data, dict) else \
                f"a {type(data).__name__}"
            raise StyleGANError(f"reference statistics {path} are a pickle of {what}, not MMGeneration's "
                                "FID-Reals dict with 'mean' and 'cov'", fix)
        mean, cov = data["mean"], data["cov"]
        for key, value in (("mean", mean), ("cov", cov)):
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
                raise StyleGANError(f"reference statistics {path}: {key!r} is not a numeric array", fix)
        problem = _vector_problem(mean.shape)
        if problem:
            raise StyleGANError(f"reference statistics {path}: 'mean' {problem}", fix)
        mu = mean.astype(np.float64).reshape(-1)
        if cov.shape != (mu.size, mu.size):
            raise StyleGANError(f"reference statistics {path}: 'cov' is {list(cov.shape)} but 'mean' has "
                                f"{mu.size} entries", fix)
        size = data.get("size", 0)
        if isinstance(size, np.ndarray) and size.size == 1:
            size = size.reshape(-1)[0]
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 0:
            raise StyleGANError(f"reference statistics {path}: 'size' is not a count of images", fix)
        name = data.get("name")
        meta = dict(format="mmgeneration-fid-reals", detector="inception_pt", detector_assumed=True,
                    name=name if isinstance(name, str) else None)
        return cls.from_arrays(mu, cov.astype(np.float64), int(size), None, meta)


def _starts_like_a_pickle(path: Path) -> bool:
    """Protocol 2+ pickles start with PROTO (0x80); an .npz is a ZIP ('PK')."""
    with open(path, "rb") as f:
        head = f.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def reference_variant(ref: FeatureStats, detector: str) -> tuple[str | None, str | None]:
    """How reference statistics fit a FID computed with ``detector``: ``(problem, note)``.

    The rule: statistics that record their detector (ours) must match it exactly (problem otherwise).
    MMGeneration FID-Reals files are taken as PyTorch-Inception ones, MMGeneration's default: they fit
    ``inception_pt`` (with a note saying so) and are refused for NVIDIA's Inception. Files that record
    nothing (pytorch-fid and clean-fid ``.npz``) fit either, with a note naming what each tool uses.
    """
    recorded = ref.meta.get("detector")
    if recorded is None:
        return None, ("the reference statistics do not record which Inception made them; this FID is only "
                      f"comparable if it was the one this metric uses ({detector}): pytorch-fid files use the "
                      "PyTorch Inception (the _pt metrics), clean-fid files NVIDIA's (the others)")
    if recorded == detector:
        if ref.meta.get("detector_assumed"):
            return None, ("the reference statistics are an MMGeneration FID-Reals file, taken to be made with "
                          "the PyTorch Inception (MMGeneration's default; the file does not say)")
        return None, None
    if ref.meta.get("detector_assumed"):
        return ("the reference statistics are an MMGeneration FID-Reals file, made with the PyTorch Inception "
                f"(inception_pt) by MMGeneration's default, not {detector}"), None
    return f"the reference statistics were made with detector {quote(str(recorded))}, not {detector}", None


# Feature vectors of the detectors (Inception 2048, VGG16 4096, CLIP/DINOv2 up to about 1536), with room
MAX_FEATURE_DIM = 16_384
# An FID-Reals pickle: float64 mean and covariance of MAX_FEATURE_DIM features, plus room for the rest.
MAX_FID_REALS_BYTES = 8 * MAX_FEATURE_DIM * (MAX_FEATURE_DIM + 1) + 2**20


def _vector_problem(shape: tuple) -> str | None:
    size = 1
    for d in shape:
        size *= d
    if len(shape) > 2 or (len(shape) == 2 and 1 not in shape):
        return f"has shape {list(shape)}, expected [D]"
    if size > MAX_FEATURE_DIM:
        return f"has {size} entries, over the limit of {MAX_FEATURE_DIM} features"
    return None
