"""How far ``--precision bf16`` images are from fp32 ones: PSNR and the largest pixel difference.

    python benchmarks/bf16_accuracy.py [--networks default,paper256,config-f] [--seeds 0-3] [--threads N]

For each network, generates the same seeds (psi 1, noise 'const') in fp32 and in bf16 and compares the
8-bit images as the CLI writes them: PSNR (peak 255) over all seeds, the largest difference of one channel
of one pixel (in 8-bit levels), and the fraction of channel values that differ at all. ``paper256`` and
``config-f`` (FFHQ-1024: channel_base 32768, channel_max 512, 8 mapping layers) are random-weight networks
built here; ``default`` is the built-in network. Also prints the std of the fp32 images, so that a network
whose random weights saturate every pixel (which would flatter the PSNR) is visible.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cpu_info import cpu_summary  # noqa: E402
from stylegan.explore.seeds import parse_seeds  # noqa: E402
from stylegan.pixels import float_to_bytes  # noqa: E402
from stylegan.precision import inference_precision  # noqa: E402
from user_networks import user_generator  # noqa: E402


def images(G: torch.nn.Module, seeds: list[int], precision: str) -> torch.Tensor:
    """``[len(seeds), C, H, W]`` float32 images, one seed at a time (batch 1, as the CLI runs)."""
    out = []
    with torch.no_grad(), inference_precision(precision):
        for seed in seeds:
            z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
            out.append(G(z, None if G.c_dim == 0 else torch.zeros(1, G.c_dim), noise_mode="const"))
    return torch.cat(out)


def compare(reference: torch.Tensor, other: torch.Tensor) -> dict[str, float]:
    """PSNR (dB, peak 255) and the largest / fraction of differing 8-bit values."""
    a, b = float_to_bytes(reference).double(), float_to_bytes(other).double()
    mse = float((a - b).square().mean())
    psnr = math.inf if mse == 0 else 10 * math.log10(255**2 / mse)
    return dict(psnr=psnr, max_diff=float((a - b).abs().max()), changed=float((a != b).double().mean()),
                std=float(reference.std()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", default="default,paper256,config-f")
    parser.add_argument("--seeds", default="0-3")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = parse_seeds(args.seeds)
    print(f"# {cpu_summary()}; {torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.1f}")
    print(f"{'network':<10} {'res':>5} {'seeds':>5} {'PSNR dB':>8} {'max diff':>8} {'changed':>8} {'img std':>8}")
    for name in args.networks.split(","):
        G = user_generator(name)
        r = compare(images(G, seeds, "fp32"), images(G, seeds, "bf16"))
        print(f"{name:<10} {G.img_resolution:>5} {len(seeds):>5} {r['psnr']:>8.2f} {r['max_diff']:>8.0f} "
              f"{100 * r['changed']:>7.1f}% {r['std']:>8.3f}", flush=True)


if __name__ == "__main__":
    main()
