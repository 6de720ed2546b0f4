"""Generator throughput (images/s) at the official paper256 channel settings, fp32; and, with --official,
seconds per image of the networks users load (FFHQ-1024 config-f, paper256) beside the official code.

    python benchmarks/generator_speed.py [--device cpu] [--device cuda] [--seconds 20] [--repeats 5]
    python benchmarks/generator_speed.py --official /tmp/off/stylegan2-ada-pytorch [--repeats 2] [--threads 1]

For each device (default: the CPU, plus CUDA when present) prints resolution, batch, images/s (median of
``--repeats`` timed runs of ``--seconds`` each) and the achieved fraction of the device's fp32 matmul
peak (conv FLOPs counted analytically; the peak is the best of several large matmuls), so that kernels
can be compared across machines. On a shared machine the figures move with the load: the header prints
the thread count and the load average.

With ``--official DIR`` (a clone of NVlabs/stylegan2-ada-pytorch) it instead times, on the CPU at batch 1
with noise 'const': ours in fp32, ours in bf16 (where the CPU has native bf16), and the official
Generator in fp32 with the same weights (its custom ops on their reference paths). The three run
interleaved, round after round, so load from other processes hits all alike; the best round is printed,
with the speed-ups over the official fp32 and the relative L2 difference of our fp32 image from theirs.

The glibc setting our commands make (``stylegan.ops.allocator``: freed memory kept for reuse) is made for
the whole process, so both implementations run with it; ``--no-tune-allocator`` leaves malloc alone for
both. The official scripts as shipped run without it: that figure is the official column of a
``--no-tune-allocator`` run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cpu_info import cpu_summary  # noqa: E402
from stylegan.networks import build_network  # noqa: E402
from stylegan.ops.allocator import tune_cpu_allocator  # noqa: E402
from stylegan.precision import cpu_has_native_bf16, inference_precision  # noqa: E402
from user_networks import USER_CONFIGS, official_generator, user_generator  # noqa: E402

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


def one_pass_seconds(G, z: torch.Tensor, precision: str) -> tuple[float, torch.Tensor]:
    """Seconds of one no-grad generator pass at ``precision``, and its image."""
    with torch.no_grad(), inference_precision(precision):
        t0 = time.perf_counter()
        img = G(z, None, noise_mode="const")
        return time.perf_counter() - t0, img


def versus_official(root: str, names: list[str], repeats: int) -> None:
    """The user-network table: ours fp32 / bf16 beside the official fp32, interleaved, best of ``repeats``."""
    bf16 = cpu_has_native_bf16()
    print(f"# {cpu_summary()}")
    print(f"# {torch.get_num_threads()} threads, load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}, "
          f"batch 1, noise const, best of {repeats} interleaved rounds (after one warm-up)")
    print(f"{'network':<9} {'res':>5} {'official fp32':>13} {'ours fp32':>9} {'×':>6} {'ours bf16':>9} {'×':>6} "
          f"{'rel L2 fp32':>11}")
    for name in names:
        ours = user_generator(name)
        runs = {"official": (official_generator(root, name, ours.state_dict()), "fp32"), "fp32": (ours, "fp32")}
        if bf16:
            runs["bf16"] = (ours, "bf16")
        z = torch.randn(1, 512, generator=torch.Generator().manual_seed(0))
        best, images = {k: float("inf") for k in runs}, {}
        for round_ in range(repeats + 1):
            for key, (G, precision) in runs.items():
                seconds, images[key] = one_pass_seconds(G, z, precision)
                if round_ > 0:  # round 0 warms up (allocator, oneDNN primitive caches)
                    best[key] = min(best[key], seconds)
        err = float((images["fp32"] - images["official"]).norm() / images["official"].norm())
        bf16_cols = (f"{best['bf16']:>8.2f}s {best['official'] / best['bf16']:>5.2f}×" if bf16
                     else f"{'-':>9} {'-':>6}")
        print(f"{name:<9} {USER_CONFIGS[name][0]:>5} {best['official']:>12.2f}s {best['fp32']:>8.2f}s "
              f"{best['official'] / best['fp32']:>5.2f}× {bf16_cols} {err:>11.1e}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", action="append", help="cpu, cuda, cuda:N (repeatable; default cpu and cuda)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per size; the median is printed")
    parser.add_argument("--official", metavar="DIR", help="a clone of NVlabs/stylegan2-ada-pytorch: time the "
                        "networks users load beside it (CPU, batch 1) instead")
    parser.add_argument("--networks", default="paper256,config-f", help="with --official: which of "
                        f"{','.join(USER_CONFIGS)}")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: PyTorch's)")
    parser.add_argument("--no-tune-allocator", action="store_true", help="leave glibc malloc as it is")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # Our commands keep freed memory for reuse (stylegan.ops.allocator); set for the whole process, so the
    # official code runs with it too.
    tuned = False if args.no_tune_allocator else tune_cpu_allocator()
    print(f"# glibc malloc {'keeps freed memory (both implementations)' if tuned else 'as it is'}")
    if args.official:
        versus_official(args.official, args.networks.split(","), args.repeats)
        return
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
