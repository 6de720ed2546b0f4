"""Generator throughput (images/s) at the official paper256 channel settings, fp32.

    python benchmarks/generator_speed.py [--device cpu] [--device cuda] [--seconds 20] [--repeats 5]

For each device (default: the CPU, plus CUDA when present) prints resolution, batch, images/s (median of
``--repeats`` timed runs of ``--seconds`` each) and the achieved fraction of the device's fp32 matmul
peak (conv FLOPs counted analytically; the peak is the best of several large matmuls), so that kernels
can be compared across machines. On a shared machine the figures move with the load: the header prints
the thread count and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from stylegan.networks import build_network

CONFIGS = [  # (resolution, batch): channel_base 16384, channel_max 512, 8 mapping layers, z/w 512
    (256, 4),
    (64, 16),
]


def make_generator(res: int) -> torch.nn.Module:
    torch.manual_seed(0)
    kw = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
              mapping_kwargs=dict(num_layers=8),
              synthesis_kwargs=dict(channel_base=16384, channel_max=512, num_fp16_res=0, conv_clamp=None))
    return build_network("Generator", kw).requires_grad_(False)


def conv_flops_per_image(G) -> float:
    """Multiply-adds ×2 of every convolution in the synthesis network (the bulk of the work)."""
    total = 0.0
    for block in G.synthesis.blocks():
        for name in ("conv0", "conv1", "torgb"):
            layer = getattr(block, name, None)
            if layer is None:
                continue
            o, i, kh, kw = layer.weight.shape
            res = block.resolution
            pixels = (res // 2) ** 2 if name == "conv0" else res**2  # conv0 runs as a transposed conv on the input grid
            total += 2.0 * o * i * kh * kw * pixels
    return total


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    """fp32 FLOP/s of the fastest of ``repeats`` rounds of big square matmuls (the least disturbed one)."""
    size = size * 4 if device.type == "cuda" else size
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    best = 0.0
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(3):
            a @ b
        _sync(device)
        best = max(best, 3 * 2 * size**3 / (time.perf_counter() - t0))
    return best


def images_per_second(G, batch: int, device: torch.device, seconds: float, repeats: int) -> float:
    """Median over ``repeats`` runs (each at least ``seconds`` and 2 batches) of batch·passes / time."""
    z = torch.randn(batch, G.z_dim, device=device)
    rates = []
    with torch.no_grad():
        G(z, None, noise_mode="const")  # warm-up
        for _ in range(repeats):
            _sync(device)
            n, t0 = 0, time.perf_counter()
            while n < 2 or time.perf_counter() - t0 < seconds:
                G(z, None, noise_mode="const")
                n += 1
            _sync(device)
            rates.append(n * batch / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", action="append", help="cpu, cuda, cuda:N (repeatable; default cpu and cuda)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per size; the median is printed")
    args = parser.parse_args()
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    for name in devices:
        device = torch.device(name)
        peak = matmul_peak(device)
        load = " ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
        print(f"device {device}, threads {torch.get_num_threads()}, load average {load}, "
              f"fp32 matmul peak {peak / 1e9:.0f} GFLOP/s")
        print(f"{'resolution':>10} {'batch':>5} {'img/s':>8} {'GFLOP/img':>9} {'% peak':>7}")
        for res, batch in CONFIGS:
            G = make_generator(res).to(device)
            ips = images_per_second(G, batch, device, args.seconds, args.repeats)
            flops = conv_flops_per_image(G)
            print(f"{res:>10} {batch:>5} {ips:>8.2f} {flops / 1e9:>9.1f} {100 * ips * flops / peak:>6.1f}%")


if __name__ == "__main__":
    main()
