"""Peak memory (RSS) of generation at 1024², ours beside the official code, and of lerp-video rendering as
the video gets longer and the grid larger.

    python benchmarks/memory_speed.py --official /tmp/off/stylegan2-ada-pytorch [--network config-f]
    python benchmarks/memory_speed.py --video [--network paper256] [--frames 8,32] [--grids 1x1,2x2] [--trace-every K]

Every figure comes from a fresh child process (``ru_maxrss`` of that process alone), which builds the
random-weight network, generates one image at batch 1 (or renders and encodes one lerp video) and exits.
The network itself is part of the peak (config-f: ~30 M parameters, 120 MB in fp32); the import of torch
is too, and is printed on its own as the ``baseline`` row.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def resident_mib() -> int:
    """This process's resident memory now (VmRSS), in MiB; 0 where /proc is not there."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS"))
    except (OSError, StopIteration):
        return 0


def child(kind: str, network: str, official: str | None, frames: int, grid: str, trace_every: int = 0) -> None:
    """Run one job in this (fresh) process and print its peak RSS in MiB as JSON."""
    sys.path.insert(0, str(HERE))
    import torch

    torch.set_num_threads(1)
    if kind != "baseline":
        from stylegan.precision import inference_precision
        from user_networks import official_generator, user_generator

        if kind != "official":
            from stylegan.ops.allocator import tune_cpu_allocator

            tune_cpu_allocator()  # as our commands run (stylegan.cli.options); the official code as shipped
        G = user_generator(network)
        if kind == "official":
            G = official_generator(official, network, G.state_dict())
        z = torch.randn(1, 512)
        if kind == "video":
            from stylegan.explore.images import parse_grid
            from stylegan.explore.video import lerp_animation, render_animation
            from stylegan.explore.video_io import write_video

            cols, rows = parse_grid(grid)
            anim = lerp_animation(G, list(range(cols * rows)), (cols, rows), num_frames=frames, num_keyframes=2)
            trace: list[int] = []

            def traced(frames_in):  # the process's resident memory as the frames stream to the encoder
                for index, frame in enumerate(frames_in):
                    if trace_every and index % trace_every == 0:
                        trace.append(resident_mib())
                    yield frame

            with tempfile.TemporaryDirectory() as tmp:
                write_video(Path(tmp) / "v.mp4", traced(render_animation(G, anim, batch_size=4, progress=False)),
                            fps=30)
            if trace_every:
                print(json.dumps({"trace": trace}))
        else:
            with torch.no_grad(), inference_precision("bf16" if kind == "ours bf16" else "fp32"):
                G(z, None, noise_mode="const")
    print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def peak_mib(kind: str, network: str, official: str | None = None, frames: int = 0, grid: str = "1x1",
             trace_every: int = 0) -> tuple[float, list[int]]:
    """(peak RSS in MiB, resident MiB every ``trace_every`` frames) of one job in a fresh process."""
    cmd = [sys.executable, __file__, "--child", kind, "--network", network, "--frames", str(frames), "--grids", grid,
           "--trace-every", str(trace_every)]
    if official:
        cmd += ["--official", official]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env, cwd=HERE.parent).stdout
    lines = [json.loads(line) for line in out.strip().splitlines() if line.startswith("{")]
    trace = next((line["trace"] for line in lines if "trace" in line), [])
    return lines[-1]["peak_mib"], trace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", metavar="DIR")
    parser.add_argument("--network", default=None, help="config-f (default for generation) or paper256 (video)")
    parser.add_argument("--video", action="store_true", help="measure lerp-video memory against length and grid")
    parser.add_argument("--frames", default="8,32")
    parser.add_argument("--grids", default="1x1,2x2")
    parser.add_argument("--trace-every", type=int, default=0, metavar="K",
                        help="with --video: also print the resident memory every K frames")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.network, args.official, int(args.frames), args.grids, args.trace_every)
        return
    sys.path.insert(0, str(HERE))
    from cpu_info import cpu_summary

    print(f"# {cpu_summary()}")
    print(f"# load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}; peak RSS of a fresh process, 1 thread")
    print(f"{'baseline (import torch)':<28} {peak_mib('baseline', 'paper256')[0]:8.0f} MiB")
    if args.video:
        network = args.network or "paper256"
        for grid in args.grids.split(","):
            for frames in (int(f) for f in args.frames.split(",")):
                mib, trace = peak_mib("video", network, frames=frames, grid=grid, trace_every=args.trace_every)
                print(f"{f'lerp-video {network} {grid} {frames} frames':<28} {mib:8.0f} MiB", flush=True)
                if trace:
                    print(f"#   resident MiB every {args.trace_every} frames: {' '.join(map(str, trace))}")
        return
    network = args.network or "config-f"
    kinds = ["ours fp32", "ours bf16"] + (["official"] if args.official else [])
    for kind in kinds:
        print(f"{f'generate {network} {kind}':<28} {peak_mib(kind, network, args.official)[0]:8.0f} MiB",
              flush=True)


if __name__ == "__main__":
    main()
