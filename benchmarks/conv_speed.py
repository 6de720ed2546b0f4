"""3×3 convolution speed on this CPU: PyTorch's direct convolution against our Winograd F(4×4, 3×3) path.

For each shape (batch, channels in → out, side) it prints milliseconds for the forward pass, for forward and
backward with both gradients (a discriminator step), and for forward and backward to the input only (the
generator step through a frozen discriminator), plus the relative error of both against float64. The
shapes are those of the training benchmark's networks; the thresholds in ``stylegan/ops/winograd.py``
(MIN_SIDE, MIN_CHANNELS) come from this table.

    python benchmarks/conv_speed.py --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from stylegan.ops.winograd import winograd_conv2d
from stylegan.ops.allocator import tune_cpu_allocator

SHAPES = [(8, 128, 128, 64), (8, 256, 256, 32), (8, 256, 256, 16), (8, 256, 256, 8), (8, 64, 64, 128),
          (8, 64, 64, 32), (8, 32, 32, 64), (4, 512, 512, 16), (4, 512, 512, 32)]


def timed(fn, repeats: int) -> float:
    fn()  # warm-up: allocator, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-tune-allocator", action="store_true", help="leave glibc malloc as it is")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.no_tune_allocator:
        tune_cpu_allocator()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), channels-last float32, "
          f"median of {args.repeats}; ms, direct / winograd")
    print(f"{'N  Cin→Cout  side':<22s} {'forward':>17s} {'fwd+bwd (x, w)':>20s} {'fwd+bwd (x)':>20s} "
          f"{'error direct / winograd':>26s}")
    for n, c, o, side in SHAPES:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn([n, c, side, side], generator=gen).contiguous(memory_format=torch.channels_last)
        w = torch.randn([o, c, 3, 3], generator=gen) / (9 * c) ** 0.5
        g = torch.randn([n, o, side, side], generator=gen).contiguous(memory_format=torch.channels_last)
        direct = lambda a, b: F.conv2d(a, b, padding=1)  # noqa: E731
        row = []
        for conv in (direct, winograd_conv2d):
            xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
            with torch.no_grad():
                fwd = timed(lambda: conv(x, w), args.repeats)
            both = timed(lambda: torch.autograd.grad(conv(xr, wr), [xr, wr], g), args.repeats)
            wf = w.clone()
            only_x = timed(lambda: torch.autograd.grad(conv(xr, wf), [xr], g), args.repeats)
            row.append((fwd, both, only_x))
        ref = F.conv2d(x.double(), w.double(), padding=1)
        errors = [float((conv(x, w).double() - ref).norm() / ref.norm()) for conv in (direct, winograd_conv2d)]
        cells = [f"{d:7.1f} / {wv:7.1f}" for d, wv in zip(row[0], row[1])]
        speed = row[0][1] / row[1][1]
        print(f"{n:<2d} {c:>4d}→{o:<4d} {side:>4d}²     {cells[0]:>17s} {cells[1]:>20s} {cells[2]:>20s} "
              f"{errors[0]:11.1e} / {errors[1]:.1e}   {speed:.2f}x", flush=True)


if __name__ == "__main__":
    main()
