"""Generator throughput (images/s) at the official paper256 channel settings, fp32.

    python benchmarks/generator_speed.py [--device cpu|cuda] [--seconds 20]

Prints a table: resolution, batch, images/s, and the achieved fraction of a measured fp32 matmul peak
(conv FLOPs counted analytically), so that kernels can be compared across machines.
"""

from __future__ import annotations

import argparse
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


def matmul_peak(device: torch.device, seconds: float = 2.0) -> float:
    a = torch.randn(1024, 1024, device=device)
    b = torch.randn(1024, 1024, device=device)
    a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * 1024**3 * n / (time.perf_counter() - t0)


def images_per_second(G, batch: int, device: torch.device, seconds: float) -> float:
    z = torch.randn(batch, G.z_dim, device=device)
    with torch.no_grad():
        G(z, None, noise_mode="const")  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        n, t0 = 0, time.perf_counter()
        while n < 3 or time.perf_counter() - t0 < seconds:
            G(z, None, noise_mode="const")
            n += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
    return n * batch / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    device = torch.device(args.device)
    peak = matmul_peak(device)
    print(f"device {device}, threads {torch.get_num_threads()}, fp32 matmul peak {peak / 1e9:.0f} GFLOP/s")
    print(f"{'resolution':>10} {'batch':>5} {'img/s':>8} {'GFLOP/img':>9} {'% peak':>7}")
    for res, batch in CONFIGS:
        G = make_generator(res).to(device)
        ips = images_per_second(G, batch, device, args.seconds)
        flops = conv_flops_per_image(G)
        print(f"{res:>10} {batch:>5} {ips:>8.2f} {flops / 1e9:>9.1f} {100 * ips * flops / peak:>6.1f}%")


if __name__ == "__main__":
    main()
