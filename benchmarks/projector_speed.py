"""Projector steps/s on the networks users load, ours (fp32 and bf16) beside the official projector (fp32).

    python benchmarks/projector_speed.py --official /tmp/off/stylegan2-ada-pytorch [--network config-f]
                                         [--steps 3] [--threads 1]

Both projectors optimise the same random-weight network (``config-f``: FFHQ-1024; ``paper256``) towards the
same target with a VGG16-size stand-in detector (tests/detector_standins.py ``CostlyVGG16``: VGG16's layer
shapes, random weights, the official call signature; run from the repository root). w_avg is estimated from
100 samples instead of 10 000 in all runs, so the figure is the optimisation steps (generator forward and
backward, the detector on both images, the noise regulariser). The runs alternate ours fp32, ours bf16
(where the CPU has native bf16), official; each figure is steps / wall time of one ``--steps`` run after
one warm-up step.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from cpu_info import cpu_summary  # noqa: E402
from stylegan.explore.projector import ProjectorConfig, project  # noqa: E402
from stylegan.metrics.detectors import load_detector  # noqa: E402
from stylegan.precision import cpu_has_native_bf16, inference_precision  # noqa: E402
from tests.detector_standins import write_detectors  # noqa: E402
from user_networks import USER_CONFIGS, official_generator, user_generator  # noqa: E402

W_AVG_SAMPLES = 100


def official_project(root: str, vgg_file: Path) -> callable:
    """The official ``projector.project``, with its detector download pointed at ``vgg_file``."""
    sys.path.insert(0, root)
    import types

    sys.modules.setdefault("imageio", types.ModuleType("imageio"))  # only its CLI writes videos
    import dnnlib  # noqa: E402  (the official package, for comparison only)
    import projector  # noqa: E402

    # NVIDIA's vgg16.pt holds constant weights; the stand-in's require grad, which the official loop (its
    # target features computed once, outside no_grad) would then backpropagate through twice.
    frozen = torch.jit.load(str(vgg_file))
    for p in frozen.parameters():
        p.requires_grad_(False)
    frozen_file = vgg_file.with_name("vgg16-frozen.pt")
    torch.jit.save(frozen, str(frozen_file))
    dnnlib.util.open_url = lambda url, *a, **k: contextlib.closing(open(frozen_file, "rb"))
    return projector.project


def timed(fn, steps: int) -> float:
    """Steps per second of ``fn(steps)`` after a 1-step warm-up."""
    fn(1)
    t0 = time.perf_counter()
    fn(steps)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", metavar="DIR", help="a clone of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--network", default="config-f", choices=list(USER_CONFIGS))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = write_detectors(tempfile.mkdtemp(), realistic=True)
    vgg = load_detector("vgg16", detector_dir=folder, device=torch.device("cpu"))
    G = user_generator(args.network)
    with torch.no_grad():
        target = ((G(torch.randn(1, 512), None, noise_mode="const")[0] + 1) * 127.5).clamp(0, 255)

    def ours(precision: str):
        def run(steps: int):
            with inference_precision(precision):
                project(G, target, vgg, config=ProjectorConfig(num_steps=steps, w_avg_samples=W_AVG_SAMPLES),
                        progress=False)
        return run

    runs = {"ours fp32": ours("fp32")}
    if cpu_has_native_bf16():
        runs["ours bf16"] = ours("bf16")
    if args.official:
        official = official_project(args.official, folder / "vgg16.pt")
        theirs = official_generator(args.official, args.network, G.state_dict())
        runs["official fp32"] = lambda steps: official(theirs, target, num_steps=steps, w_avg_samples=W_AVG_SAMPLES,
                                                       device=torch.device("cpu"))
    print(f"# {cpu_summary()}")
    print(f"# {torch.get_num_threads()} threads, load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}; "
          f"projector on {args.network} ({USER_CONFIGS[args.network][0]}²), VGG16-size stand-in, {args.steps} steps")
    rates = {name: timed(fn, args.steps) for name, fn in runs.items()}
    base = rates.get("official fp32")
    for name, rate in rates.items():
        ratio = f"{rate / base:.2f}× official" if base else ""
        print(f"{name:<14} {rate:8.3f} steps/s  {ratio}", flush=True)


if __name__ == "__main__":
    main()
