"""The metric formulas on features, following the StyleGAN2-ADA definitions (constants in each docstring).

Everything here takes features that are already computed; nothing loads networks or images.
"""

from __future__ import annotations

import numpy as np
import torch

from stylegan.metrics.distributed import Shard, all_sum


# --------------------------------------------------------------------------------------------- FID

def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between Gaussians: ``|mu1 - mu2|² + tr(S1 + S2 - 2·(S1·S2)^½)``, in float64.

    ``tr((S1·S2)^½)`` is computed as ``Σ sqrt(eig(S1^½·S2·S1^½))``: that matrix is symmetric positive
    semi-definite and has the same eigenvalues as ``S1·S2``, so near-singular covariances (fewer samples
    than features) give a real answer directly, where a general matrix square root picks up tiny
    imaginary parts that have to be discarded. Tiny negative eigenvalues from rounding count as 0.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched statistics: mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}")
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2  # symmetric up to rounding; make it exact for eigh
    lam, vec = np.linalg.eigh(s1)
    root1 = (vec * np.sqrt(np.clip(lam, 0, None))) @ vec.T
    middle = root1 @ s2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(np.square(mu1 - mu2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt)


# --------------------------------------------------------------------------------------------- KID

def cubic_polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The KID kernel ``k(u, v) = (u·v / d + 1)³`` for every row pair: ``[len(x), len(y)]`` (d = feature count)."""
    dims = x.shape[1]
    return torch.pow(torch.mm(x, y.T) / dims + 1, 3)


def unbiased_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    """The unbiased estimate of MMD² between equal-sized samples ``x``, ``y`` ``[m, d]`` (Gretton et al.):

    ``mean_{i≠j} k(x_i, x_j) + mean_{i≠j} k(y_i, y_j) − 2 · mean_{i,j} k(x_i, y_j)``.
    """
    m = len(x)
    pairs_without_self = m * (m - 1)

    def mean_off_diagonal(gram: torch.Tensor) -> torch.Tensor:
        return (gram.sum() - gram.diagonal().sum()) / pairs_without_self

    within = mean_off_diagonal(cubic_polynomial_kernel(x, x)) + mean_off_diagonal(cubic_polynomial_kernel(y, y))
    across = cubic_polynomial_kernel(x, y).mean()
    return float(within - 2 * across)


def kernel_inception_distance(real: torch.Tensor, gen: torch.Tensor, *, num_subsets: int = 100,
                              max_subset_size: int = 1000, seed: int = 0) -> float:
    """KID (Bińkowski et al.): :func:`unbiased_mmd2` with the cubic polynomial kernel, averaged over subsets.

    Every subset takes ``m = min(len(real), len(gen), max_subset_size)`` rows of each set without
    replacement, generated rows drawn first, from one numpy ``RandomState(seed mod 2³²)``; the kernel
    runs in float64 on the generated features' device. Official constants: 100 subsets of at most 1000.
    """
    if real.ndim != 2 or gen.ndim != 2 or real.shape[1] != gen.shape[1]:
        raise ValueError(f"expected [N, D] features of equal D, got {list(real.shape)} and {list(gen.shape)}")
    m = min(len(real), len(gen), max_subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 real and 2 generated feature vectors")
    draws = np.random.RandomState(seed % 2**32)

    def subset(features: torch.Tensor) -> torch.Tensor:
        rows = torch.from_numpy(draws.choice(len(features), m, replace=False))
        return features[rows.to(features.device)].to(device=gen.device, dtype=torch.float64)

    estimates = []
    for _ in range(num_subsets):
        gen_rows = subset(gen)  # the generated subset is drawn first: the order fixes which rows a seed picks
        estimates.append(unbiased_mmd2(gen_rows, subset(real)))
    return float(np.mean(estimates))


# --------------------------------------------------------------------------------------------- PR

def _half_distances(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``[len(rows), len(cols)]``, rounded to float16 like the official (fp16) ones."""
    return torch.cdist(rows.float().unsqueeze(0), cols.float().unsqueeze(0))[0].half()


def knn_radii(manifold: torch.Tensor, k: int, *, row_batch: int = 10000, col_batch: int = 10000,
              shard: Shard = Shard()) -> torch.Tensor:
    """Distance from each manifold row to its k-th nearest other row ``[N]`` (float16).

    The row itself (distance 0) counts as the first neighbour, as in the official code, so this is the
    (k + 1)-th smallest distance. Memory is bounded by ``row_batch × col_batch``: a running k + 1 smallest
    per row is kept across column chunks. Row batches are shared out over ranks and summed back.
    """
    n = len(manifold)
    if n <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} feature vectors, got {n}")
    radii = torch.zeros([n], dtype=torch.float32, device=manifold.device)
    starts = list(range(0, n, row_batch))
    for unit in shard.units(len(starts)):
        rows = manifold[starts[unit]: starts[unit] + row_batch]
        best = None
        for c0 in range(0, n, col_batch):
            dist = _half_distances(rows, manifold[c0: c0 + col_batch]).float()
            both = dist if best is None else torch.cat([best, dist], dim=1)
            best = both.topk(min(k + 1, both.shape[1]), dim=1, largest=False).values
        radii[starts[unit]: starts[unit] + len(rows)] = best[:, k]
    return all_sum(radii, shard).half()


def coverage(probes: torch.Tensor, manifold: torch.Tensor, radii: torch.Tensor, *, row_batch: int = 10000,
             col_batch: int = 10000, shard: Shard = Shard()) -> float:
    """Fraction of probes within ``radii[j]`` of some manifold row j (the k-NN manifold estimate)."""
    inside = torch.zeros([], dtype=torch.float64, device=probes.device)
    starts = list(range(0, len(probes), row_batch))
    for unit in shard.units(len(starts)):
        rows = probes[starts[unit]: starts[unit] + row_batch]
        hit = torch.zeros([len(rows)], dtype=torch.bool, device=probes.device)
        for c0 in range(0, len(manifold), col_batch):
            dist = _half_distances(rows, manifold[c0: c0 + col_batch])
            hit |= (dist <= radii[c0: c0 + col_batch].unsqueeze(0)).any(dim=1)
        inside += hit.sum()
    return float(all_sum(inside, shard).item()) / len(probes)


def precision_recall(real: torch.Tensor, gen: torch.Tensor, *, k: int = 3, row_batch: int = 10000,
                     col_batch: int = 10000, shard: Shard = Shard()) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al.) with k-NN manifolds, k = 3 officially.

    Precision: share of generated rows inside the real manifold; recall: share of real rows inside the
    generated manifold. Features are rounded to float16 first and distances are float16, as officially.
    """
    real, gen = real.half(), gen.half()
    precision = coverage(gen, real, knn_radii(real, k, row_batch=row_batch, col_batch=col_batch, shard=shard),
                         row_batch=row_batch, col_batch=col_batch, shard=shard)
    recall = coverage(real, gen, knn_radii(gen, k, row_batch=row_batch, col_batch=col_batch, shard=shard),
                      row_batch=row_batch, col_batch=col_batch, shard=shard)
    return precision, recall


# --------------------------------------------------------------------------------------------- IS

def _entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each distribution along the last axis, with ``0 · log 0 = 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=-1)


def inception_score(probs: np.ndarray, num_splits: int = 10) -> tuple[float, float]:
    """IS (Salimans et al.) mean and std over ``num_splits`` consecutive splits of ``probs`` ``[N, classes]``.

    A split's score is ``exp(E_x KL(p(y|x) ‖ p(y)))`` with ``p(y)`` the split's mean prediction; the
    expected KL equals the mutual information ``H(p(y)) − E_x H(p(y|x))``, which is how it is computed
    here, in float64. Split ``s`` holds rows ``[⌊s·N/splits⌋, ⌊(s+1)·N/splits⌋)``; the std is the
    population std (``ddof=0``). Official: 10 splits of 50k samples.
    """
    p = np.asarray(probs, dtype=np.float64)
    n = len(p)
    if n < num_splits:
        raise ValueError(f"inception score with {num_splits} splits needs at least {num_splits} samples, got {n}")
    bounds = [s * n // num_splits for s in range(num_splits + 1)]
    per_split = np.empty(num_splits)
    for s in range(num_splits):
        conditional = p[bounds[s]: bounds[s + 1]]
        mutual_information = _entropy(conditional.mean(axis=0)) - _entropy(conditional).mean()
        per_split[s] = np.exp(mutual_information)
    return float(per_split.mean()), float(per_split.std())


# --------------------------------------------------------------------------------------------- PPL

def _unit_rows(v: torch.Tensor) -> torch.Tensor:
    """``v`` scaled to unit L2 length along its last axis."""
    return v / torch.linalg.vector_norm(v, dim=-1, keepdim=True)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical linear interpolation (Shoemake) between the directions of ``a`` and ``b``.

    With unit ``â``, ``b̂`` at angle ``Ω``: ``(sin((1 − t)·Ω) · â + sin(t·Ω) · b̂) / sin Ω``, the point a
    fraction ``t`` along the great circle from ``â`` to ``b̂``. ``a``, ``b``: ``[N, D]`` (lengths are
    ignored); ``t``: ``[N, 1]``. Returns unit vectors ``[N, D]``.
    """
    start, end = _unit_rows(a), _unit_rows(b)
    omega = torch.acos(torch.clamp((start * end).sum(dim=-1, keepdim=True), -1, 1))
    weight_start, weight_end = torch.sin((1 - t) * omega), torch.sin(t * omega)
    return (weight_start * start + weight_end * end) / torch.sin(omega)


def filtered_mean(dist: np.ndarray, lo_pct: float = 1, hi_pct: float = 99) -> float:
    """Mean of the values between the ``lo_pct`` ('lower') and ``hi_pct`` ('higher') percentiles, inclusive.

    PPL uses 1 and 99 to drop the rare huge differences that dominate a plain mean.
    """
    d = np.asarray(dist, dtype=np.float64)
    lo = np.percentile(d, lo_pct, method="lower")
    hi = np.percentile(d, hi_pct, method="higher")
    return float(d[(d >= lo) & (d <= hi)].mean())
