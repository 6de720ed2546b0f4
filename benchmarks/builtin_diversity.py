"""How varied and how readable the built-in network's digits are (issue 13's target for a retrained one).

    python benchmarks/builtin_diversity.py [--network default] [--per-class 50]

For each class, ``--per-class`` samples (ψ 1, noise 'const', seeds as tests/formats/test_builtin.py draws
them) are averaged down to 8×8 and put beside scikit-learn's real 8×8 digits of that class (scaled to
[0, 1]). Spread = root mean square distance of a class's images to their class mean; the table gives the
generated spread, the real spread and their ratio per class, and the share that an independent
classifier (logistic regression fitted on the real digits) reads as the requested class. Goal for a
retrained built-in network: ratio ≥ 0.6 overall with ≥ 95 % read correctly.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import stylegan


def spread(images: np.ndarray) -> float:
    """RMS distance of ``images`` [N, 64] to their mean."""
    return float(np.sqrt(((images - images.mean(axis=0)) ** 2).sum(axis=1).mean()))


def generated_8x8(G: torch.nn.Module, k: int, n: int, seed: int = 0) -> np.ndarray:
    z = torch.from_numpy(np.random.RandomState(seed + k).randn(n, G.z_dim)).float()
    c = torch.nn.functional.one_hot(torch.full([n], k), G.c_dim).float()
    with torch.no_grad():
        img = G(z, c, noise_mode="const")
    side = img.shape[-1] // 8
    return ((img[:, 0] + 1) / 2).clamp(0, 1).reshape(n, 8, side, 8, side).mean(dim=(2, 4)).reshape(n, 64).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--network", default="default")
    parser.add_argument("--per-class", type=int, default=50)
    args = parser.parse_args()
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    digits = load_digits()
    real = digits.data / 16.0
    classifier = LogisticRegression(max_iter=5000).fit(real, digits.target)
    G = stylegan.load_network(args.network)["G_ema"]
    print(f"{'class':>5s} {'generated':>10s} {'real':>8s} {'ratio':>6s} {'read as class':>14s}")
    ratios, hits = [], []
    for k in range(G.c_dim):
        fake = generated_8x8(G, k, args.per_class)
        ours, theirs = spread(fake), spread(real[digits.target == k])
        read = float((classifier.predict(fake) == k).mean())
        ratios.append(ours / theirs)
        hits.append(read)
        print(f"{k:5d} {ours:10.3f} {theirs:8.3f} {ours / theirs:6.2f} {read:13.0%}")
    print(f"{'all':>5s} {'':>10s} {'':>8s} {np.mean(ratios):6.2f} {np.mean(hits):13.0%}")


if __name__ == "__main__":
    main()
