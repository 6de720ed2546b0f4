"""Projector steps/s and peak memory on the networks users load, ours (fp32 and bf16) beside the official
projector (fp32), interleaved.

    python benchmarks/projector_speed.py --official /tmp/off/stylegan2-ada-pytorch [--network config-f]
                                         [--steps 3] [--rounds 2] [--threads 1]

Both projectors optimise the same random-weight network (``config-f``: FFHQ-1024; ``paper256``) towards the
same target with a VGG16-size stand-in detector (tests/detector_standins.py ``CostlyVGG16``: VGG16's layer
shapes, random weights, the official call signature; run from the repository root). Its weights are saved
frozen, as in NVIDIA's vgg16.pt, so neither projector could spend time on detector weight gradients.
w_avg is estimated from 100 samples instead of 10 000, so the figure is the optimisation steps (generator
forward and backward, the detector on the synthesized image, the noise regulariser, Adam).

Each run is a fresh process (so that its peak RSS is its own) projecting for ``--steps`` + 1 steps; its
rate is ``--steps`` over the time from the end of step 1 (warm-up: primitive caches, kept weight work) to
the end of the last step. Round after round the runs alternate ours fp32, ours bf16 (where the CPU has
native bf16), official, so load from other processes hits all alike; the best round of each is printed,
with the ratio to the official projector's best.

Our projector tells glibc to keep freed memory for reuse (``stylegan.ops.allocator``), which spares every
step the page faults of its large activations; the official one runs as shipped. ``--same-malloc`` adds a
run of the official projector with that setting too, for a like-for-like ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from cpu_info import cpu_summary  # noqa: E402
from stylegan.ops.allocator import tune_cpu_allocator  # noqa: E402
from stylegan.precision import cpu_has_native_bf16  # noqa: E402
from user_networks import USER_CONFIGS  # noqa: E402

W_AVG_SAMPLES = 100
FROZEN_VGG = "vgg16.pt"


def frozen_detector_folder() -> Path:
    """A folder holding the VGG16-size stand-in under its official name, its weights not requiring grad."""
    from tests.detector_standins import write_detectors

    folder = write_detectors(tempfile.mkdtemp(prefix="projector-speed-"), realistic=True)
    vgg = torch.jit.load(str(folder / FROZEN_VGG))
    for p in vgg.parameters():
        p.requires_grad_(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(vgg, str(folder / FROZEN_VGG))
    return folder


def network_and_target(network: str) -> tuple[torch.nn.Module, torch.Tensor]:
    """Our random-weight generator and its own image of a fixed z as the target, float ``[3, H, W]`` in [0, 255]."""
    from user_networks import user_generator

    G = user_generator(network)
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        target = ((G(z, None, noise_mode="const")[0] + 1) * 127.5).clamp(0, 255)
    return G, target


def run_ours(precision: str, network: str, folder: Path, steps: int) -> list[float]:
    """Timestamps at the end of each of ``steps`` steps of our projector."""
    from stylegan.explore.projector import ProjectorConfig, project
    from stylegan.metrics.detectors import load_detector
    from stylegan.precision import inference_precision

    vgg = load_detector("vgg16", detector_dir=folder, device=torch.device("cpu"), progress=False)
    G, target = network_and_target(network)
    stamps: list[float] = []
    with inference_precision(precision):  # as the CLI runs it (--precision)
        project(G, target, vgg, config=ProjectorConfig(num_steps=steps, w_avg_samples=W_AVG_SAMPLES),
                progress=False, on_step=lambda *_: stamps.append(time.perf_counter()))
    return stamps


def run_official(root: str, network: str, folder: Path, steps: int) -> list[float]:
    """Timestamps at the end of each of ``steps`` steps of NVIDIA's ``projector.project`` (its per-step log
    line, printed right after its optimizer step), on the same weights, with its detector download pointed
    at the stand-in."""
    sys.path.insert(0, root)
    import types

    sys.modules.setdefault("imageio", types.ModuleType("imageio"))  # only its CLI writes videos
    import dnnlib  # noqa: E402  (the official package, for comparison only)
    import projector  # noqa: E402

    from user_networks import official_generator

    ours, target = network_and_target(network)
    G = official_generator(root, network, ours.state_dict())
    del ours
    dnnlib.util.open_url = lambda url, *a, **k: contextlib.closing(open(folder / FROZEN_VGG, "rb"))
    stamps: list[float] = []

    def note_step(*args, **_) -> None:  # stands in for the print of its per-step log line
        if str(args[0]).startswith("step"):
            stamps.append(time.perf_counter())

    projector.print = note_step
    projector.project(G, target, num_steps=steps, w_avg_samples=W_AVG_SAMPLES, verbose=True,
                      device=torch.device("cpu"))
    return stamps


def worker(args: argparse.Namespace) -> None:
    """One run in this process: prints ``{"rate": steps/s after step 1, "peak_rss_gb": ...}`` as JSON."""
    if args.threads:
        torch.set_num_threads(args.threads)
    folder, total = Path(args.detectors), args.steps + 1
    if args.worker == "official fp32, same malloc":
        tune_cpu_allocator()  # what our projector sets for itself (stylegan.ops.allocator)
    if args.worker.startswith("official"):
        stamps = run_official(args.official, args.network, folder, total)
    else:
        stamps = run_ours(args.worker.split()[-1], args.network, folder, total)
    rate = args.steps / (stamps[-1] - stamps[0])
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # ru_maxrss is in KiB on Linux
    print(json.dumps({"rate": rate, "peak_rss_gb": peak_gb}))


def one_run(name: str, args: argparse.Namespace, folder: Path) -> dict:
    """Run ``name`` in a fresh process and return its JSON line."""
    command = [sys.executable, __file__, "--worker", name, "--detectors", str(folder), "--network", args.network,
               "--steps", str(args.steps)]
    command += ["--official", args.official] if args.official else []
    command += ["--threads", str(args.threads)] if args.threads else []
    done = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_average() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", metavar="DIR", help="a clone of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--network", default="config-f", choices=list(USER_CONFIGS))
    parser.add_argument("--steps", type=int, default=3, help="timed steps per run (after one warm-up step)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best of each is printed")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: PyTorch's)")
    parser.add_argument("--no-bf16", action="store_true", help="skip ours in bf16")
    parser.add_argument("--same-malloc", action="store_true", help="also run the official projector with the "
                        "glibc setting ours makes (freed memory kept for reuse): like for like")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--detectors", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    names = ["ours fp32"] + (["ours bf16"] if cpu_has_native_bf16() and not args.no_bf16 else [])
    names += ["official fp32"] if args.official else []
    names += ["official fp32, same malloc"] if args.official and args.same_malloc else []
    folder = frozen_detector_folder()
    threads = args.threads or torch.get_num_threads()
    print(f"# {cpu_summary()}")
    print(f"# {threads} threads, load average {load_average()} at the start; projector on {args.network} "
          f"({USER_CONFIGS[args.network][0]}²), VGG16-size stand-in, {args.steps} timed steps per run, "
          f"{args.rounds} interleaved rounds", flush=True)
    best: dict[str, dict] = {}
    for round_ in range(args.rounds):
        for name in names:
            result = one_run(name, args, folder)
            print(f"#   round {round_ + 1} {name:<27} {result['rate']:.4f} steps/s  peak RSS "
                  f"{result['peak_rss_gb']:.2f} GB  (load {load_average()})", flush=True)
            if name not in best or result["rate"] > best[name]["rate"]:
                best[name] = result
    base = best.get("official fp32", {}).get("rate")
    print(f"{'projector':<27} {'steps/s':>8} {'s/step':>7} {'× official':>10} {'peak RSS':>9}")
    for name, result in best.items():
        ratio = f"{result['rate'] / base:.2f}×" if base else "-"
        print(f"{name:<27} {result['rate']:>8.4f} {1 / result['rate']:>6.1f}s {ratio:>10} "
              f"{result['peak_rss_gb']:>7.2f}GB")
    print(f"# load average {load_average()} at the end")


if __name__ == "__main__":
    main()
