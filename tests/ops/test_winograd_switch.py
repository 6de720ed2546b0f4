"""The ``STYLEGAN_WINOGRAD`` environment variable, read once at import: ``0`` starts the Winograd path off,
anything else (or nothing) starts it on. Each setting runs in a fresh interpreter, and the two results are
held to error bounds derived from the arithmetic of each path against a float64 convolution."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
N, C, O, SIDE = 2, 96, 96, 16  # the smallest layer that takes the Winograd path (MIN_CHANNELS, MIN_SIDE)

CHILD = f"""
import sys, torch, torch.nn.functional as F
from stylegan.ops import conv2d_resample, winograd
torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
x = torch.randn([{N}, {C}, {SIDE}, {SIDE}], generator=g)
w = torch.randn([{O}, {C}, 3, 3], generator=g)
y = conv2d_resample(x, w, padding=1)
torch.save(dict(enabled=winograd.is_enabled(), applies=winograd.applies(x, w, [1, 1]),
                same_as_direct=torch.equal(y, F.conv2d(x, w, padding=1)), x=x, w=w, y=y), sys.argv[1])
"""


def run_child(tmp_path: Path, setting: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "STYLEGAN_WINOGRAD"}
    if setting is not None:
        env["STYLEGAN_WINOGRAD"] = setting
    env["OMP_NUM_THREADS"] = "1"
    out = tmp_path / f"winograd_{setting}.pt"
    subprocess.run([sys.executable, "-c", CHILD, str(out)], env=env, cwd=REPO, check=True, timeout=120)
    return torch.load(out)


# F(4×4, 3×3) of Lavin & Gray (points 0, ±1, ±2, ∞): y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A per 6×6 input tile.
BT = torch.tensor([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                   [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=torch.float64)
G = torch.tensor([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=torch.float64)
AT = torch.tensor([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
                  dtype=torch.float64)


def gamma(k: int, unit_roundoff: float) -> float:
    """Higham's γ_k = k·u / (1 − k·u): the relative error bound of k successive roundings."""
    return k * unit_roundoff / (1 - k * unit_roundoff)


def winograd_magnitude(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The Winograd evaluation with every matrix and input replaced by its absolute value, ``[N, O, H, W]``.

    A computation made of sums and products, evaluated in floating point, differs from the exact value by at
    most γ_k times this absolute-valued evaluation, k being the most roundings on a path from input to output.
    """
    n, _, h, wd = x.shape
    patches = F.pad(x.abs(), [1, 1, 1, 1]).unfold(2, 6, 4).unfold(3, 6, 4)  # [N, C, Th, Tw, 6, 6]
    v = torch.einsum("ai,nctuij,bj->nctuab", BT.abs(), patches, BT.abs())
    u = torch.einsum("ai,ocij,bj->ocab", G.abs(), w.abs(), G.abs())
    m = torch.einsum("nctuab,ocab->notuab", v, u)
    y = torch.einsum("pa,notuab,qb->notpuq", AT.abs(), m, AT.abs())  # [N, O, Th, 4, Tw, 4]
    return y.reshape(n, w.shape[0], h, wd)


def test_environment_variable_sets_the_start_state_and_both_paths_agree(tmp_path):
    off, default, on = run_child(tmp_path, "0"), run_child(tmp_path, None), run_child(tmp_path, "1")
    assert not off["enabled"] and not off["applies"] and off["same_as_direct"]
    assert default["enabled"] and default["applies"]
    assert on["enabled"] and on["applies"]
    assert torch.equal(default["y"], on["y"]) and torch.equal(default["x"], off["x"])
    assert not torch.equal(default["y"], off["y"])  # a different summation: Winograd really ran

    x, w = off["x"].double(), off["w"].double()
    exact = F.conv2d(x, w, padding=1)  # float64: its own error (γ_{9C} at u = 2⁻⁵³) is added to each bound
    direct_mag = F.conv2d(x.abs(), w.abs(), padding=1)
    u32, u64 = 2.0 ** -24, 2.0 ** -53
    # Direct: a dot product of 9C terms, one rounding per product and per addition.
    direct_tol = (gamma(9 * C, u32) + gamma(9 * C, u64)) * direct_mag
    # Winograd, the most roundings on one path: input transform 2 passes × ≤ 4 terms × (multiply + add) = 16;
    # weight transform: the rounded constant (1/6, 1/24, ... are inexact), its product, a 9-term sum = 10;
    # the per-point product summed over C channels = C; output transform: a 36-term sum (integer constants,
    # exact) = 36. Together C + 62, taken as C + 64.
    wino_tol = gamma(C + 64, u32) * winograd_magnitude(x, w) + gamma(9 * C, u64) * direct_mag

    assert ((off["y"].double() - exact).abs() <= direct_tol).all()
    assert ((default["y"].double() - exact).abs() <= wino_tol).all()
    assert ((default["y"].double() - off["y"].double()).abs() <= direct_tol + wino_tol).all()
    # Worst-case bounds, yet tight enough to catch a wrong result (a wrong tile, row or channel errs by the
    # outputs' own size): under 2% of the largest output (1.3% here, at the tile corners, where Aᵀ's
    # coefficients 8 and −8 meet).
    assert float((direct_tol + wino_tol).max()) < 2e-2 * float(exact.abs().max())
