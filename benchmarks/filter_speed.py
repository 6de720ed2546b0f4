"""Speed of the FIR resampling filters on this CPU: ours (``stylegan.ops.upfirdn2d``) against the same
filtering written as PyTorch's grouped convolution, at the shapes of the 64² training benchmark's networks.

For each filter it prints milliseconds for the forward pass, forward and backward, and the double backward
that R1 and path-length regularisation run (the gradient of a squared gradient). PyTorch's double backward
of a grouped convolution also computes the constant filter's gradient, one channel at a time; ours is one
transposed convolution. Downsampling filters computed with a stride are timed against filtering at full
resolution and dropping three samples in four, as before.

    python benchmarks/filter_speed.py --threads 2
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from conv_speed import timed  # the sibling script (benchmarks/ is on the path when run)
from stylegan.ops import upfirdn2d
from stylegan.ops.allocator import tune_cpu_allocator
from stylegan.ops.filters import make_filter

# name, input [N, C, H, W], upfirdn2d arguments (as conv2d_resample and the D skip branch call it)
CASES = [
    ("D down-conv prefilter 64²", (16, 128, 64, 64), dict(padding=[2, 2, 2, 2])),
    ("D skip downsample 64²→32²", (16, 128, 64, 64), dict(down=2, padding=[1, 1, 1, 1])),
    ("D skip downsample 32²→16²", (16, 256, 32, 32), dict(down=2, padding=[1, 1, 1, 1])),
    ("G up-conv filter 65²→64²", (8, 128, 65, 65), dict(padding=[1, 1, 1, 1], gain=4)),
]


def grouped_conv(x, f, up=1, down=1, padding=0, gain=1):
    """The same filtering as one grouped F.conv2d at full resolution, then every down-th sample."""
    x0, x1, y0, y1 = padding if isinstance(padding, list) else [padding] * 4
    assert x0 == x1 and y0 == y1, "the cases here pad symmetrically, inside the convolution"
    weight = (f * gain).flip([0, 1])[None, None].expand(x.shape[1], 1, *f.shape)
    return F.conv2d(x, weight, padding=[y0, x0], groups=x.shape[1])[:, :, ::down, ::down]


def measures(filt, x, repeats):
    def forward():
        with torch.no_grad():
            filt(x)

    def backward():
        xr = x.clone().requires_grad_()
        torch.autograd.grad(filt(xr).square().sum(), xr)

    def double_backward():
        xr = x.clone().requires_grad_()
        g, = torch.autograd.grad(filt(xr).tanh().square().sum(), xr, create_graph=True)
        torch.autograd.grad(g.square().sum(), xr)

    return [timed(fn, repeats) for fn in (forward, backward, double_backward)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tune_cpu_allocator()
    f = make_filter([1, 3, 3, 1])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), channels-last float32, "
          f"median of {args.repeats}; ms, grouped conv / ours")
    print(f"{'filter':<28s} {'forward':>17s} {'fwd+bwd':>17s} {'double backward':>19s}")
    for name, shape, kwargs in CASES:
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).contiguous(
            memory_format=torch.channels_last)
        ours = lambda t: upfirdn2d(t, f, **kwargs)  # noqa: E731
        theirs = lambda t: grouped_conv(t, f, **kwargs)  # noqa: E731
        if not torch.allclose(ours(x), theirs(x), atol=1e-5):
            raise SystemExit(f"{name}: the two filterings disagree")
        a, b = measures(theirs, x, args.repeats), measures(ours, x, args.repeats)
        cells = [f"{p:7.1f} / {q:6.1f}" for p, q in zip(a, b)]
        print(f"{name:<28s} {cells[0]:>17s} {cells[1]:>17s} {cells[2]:>19s}   {a[2] / b[2]:5.1f}x", flush=True)


if __name__ == "__main__":
    main()
