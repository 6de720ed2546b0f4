"""How readable a trained class-conditional network's digits are (issue 14's check of `--cfg stylegan1`).

    python benchmarks/v1_digits.py --network runs/.../network-snapshot-000070.safetensors [--per-class 100]
        [--grid /tmp/v1-digits-grid.png]

The same method as benchmarks/builtin_diversity.py: for each class k, ``--per-class`` samples of G_ema
(ψ 1, noise 'const', seeds seed + k) are averaged down to 8×8 and given to an independent classifier,
logistic regression fitted on scikit-learn's real 8×8 digits (scaled to [0, 1]); the table gives the share
read as k. ``--grid`` writes one row per class (the first 12 samples of each) as a PNG. Goal: ≥ 90 %.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import PIL.Image
import torch

import stylegan


def samples(G: torch.nn.Module, k: int, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` images ``[n, C, H, W]`` (about [-1, 1]) of class ``k``: z from RandomState(seed + k)."""
    z = torch.from_numpy(np.random.RandomState(seed + k).randn(n, G.z_dim)).float()
    c = torch.nn.functional.one_hot(torch.full([n], k), G.c_dim).float()
    with torch.no_grad():
        return G(z, c, noise_mode="const")


def as_8x8(images: torch.Tensor) -> np.ndarray:
    """Images ``[n, C, H, W]`` → ``[n, 64]`` in [0, 1]: channel 0, box-averaged down to 8×8."""
    n, side = images.shape[0], images.shape[-1] // 8
    return ((images[:, 0] + 1) / 2).clamp(0, 1).reshape(n, 8, side, 8, side).mean(dim=(2, 4)).reshape(n, 64).numpy()


def write_grid(rows: list[torch.Tensor], path: Path) -> None:
    """One row of images per class → a grayscale PNG."""
    from stylegan.pixels import float_to_bytes
    tiles = torch.cat([torch.cat(list(row[:, 0]), dim=1) for row in rows], dim=0)
    PIL.Image.fromarray(float_to_bytes(tiles).numpy(), "L").save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", required=True)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", type=Path, help="write a PNG with 12 samples per class here")
    args = parser.parse_args()
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    digits = load_digits()
    classifier = LogisticRegression(max_iter=5000).fit(digits.data / 16.0, digits.target)
    G = stylegan.load_network(args.network)["G_ema"]
    lod = getattr(G, "lod", 0.0)
    print(f"{args.network}: {type(G).__name__}, lod {lod:g}, {G.c_dim} classes")
    hits, rows = [], []
    for k in range(G.c_dim):
        images = samples(G, k, args.per_class, args.seed)
        read = float((classifier.predict(as_8x8(images)) == k).mean())
        hits.append(read)
        rows.append(images[:12])
        print(f"class {k}: read as {k}: {read:.0%}")
    print(f"all: {np.mean(hits):.1%}")
    if args.grid:
        write_grid(rows, args.grid)
        print(f"grid: {args.grid}")


if __name__ == "__main__":
    main()
