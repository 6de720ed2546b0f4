"""The explorer's frame time beside ``stylegan generate``'s time per image, on the CPU.

    python benchmarks/explore_speed.py [--networks default,paper256] [--rounds 5] [--frames 8] [--images 4]
                                       [--threads N]

For each network (the built-in one; paper256, the ADA paper's 256² configuration with random weights, see
benchmarks/user_networks.py) it times, round after round and interleaved so that load from other processes
hits all alike, in this one process:

- explorer frame: ``GET /api/render?seed=S`` through the explorer's ASGI app (Starlette's test client: query
  parsing, mapping, synthesis, PNG encoding, the HTTP response), a new seed each frame, as a page asks;
- ``generate`` per image, batch 1 and at its default batch of 8: the marginal cost of one more image, i.e.
  ``(t(1 + K seeds) − t(1 seed)) / K`` of ``stylegan generate`` run in-process (``main([...])``), so the
  network's loading, paid once per command, is left out; the explorer loads it once at start-up too.

Prints the median over rounds of each round's mean (milliseconds), and the explorer's ratio to generate.
Figures move with the machine's load: the header prints the thread count and the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stylegan  # noqa: E402
from cpu_info import cpu_summary  # noqa: E402
from stylegan.cli import main as cli_main  # noqa: E402
from stylegan.web.app import create_app  # noqa: E402
from stylegan.web.projections import Projections  # noqa: E402
from stylegan.web.session import Explorer  # noqa: E402
from user_networks import USER_CONFIGS, user_generator  # noqa: E402

FRAME_TARGET_MS = 50.0  # the target for the built-in network's frame on the CPU


def network_spec(name: str, workdir: Path) -> str:
    """What ``--network`` takes for ``name``: ``default``, or a saved random-weight network of that config."""
    if name == "default":
        return "default"
    path = workdir / f"{name}.safetensors"
    stylegan.save_network({"G_ema": user_generator(name)}, path)
    return str(path)


def api_client(spec: str):
    """A test client on an explorer serving ``spec``, warmed up; and the class parameter its renders need."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    explorer = Explorer([spec])
    client = TestClient(create_app(explorer, Projections(explorer)))
    klass = "&class=0" if explorer.network_info(0)["c_dim"] else ""
    for seed in range(2):  # first calls pay one-off costs (allocator, kernel selection)
        assert client.get(f"/api/render?seed={seed}{klass}").status_code == 200
    return client, klass


def api_frame_ms(client, klass: str, seeds: range) -> float:
    """Mean milliseconds per ``GET /api/render`` over ``seeds``."""
    t0 = time.perf_counter()
    for seed in seeds:
        r = client.get(f"/api/render?seed={seed}{klass}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    return (time.perf_counter() - t0) * 1000 / len(seeds)


def generate_seconds(spec: str, first: int, count: int, batch: int, klass: str, outdir: Path) -> float:
    """Wall seconds of ``stylegan generate`` for seeds ``first .. first+count-1``, run in this process."""
    args = ["generate", "--network", spec, "--seeds", f"{first}-{first + count - 1}", "--batch", str(batch),
            "--outdir", str(outdir), "--quiet"]
    if klass:
        args += ["--class", "0"]
    with contextlib.redirect_stdout(io.StringIO()):  # its "wrote ..." line
        t0 = time.perf_counter()
        code = cli_main(args)
        seconds = time.perf_counter() - t0
    assert code == 0
    return seconds


def generate_image_ms(spec: str, first: int, images: int, batch: int, klass: str, outdir: Path) -> float:
    """Marginal milliseconds per image of ``generate`` (its one-off network loading subtracted)."""
    one = generate_seconds(spec, first, 1, batch, klass, outdir)
    more = generate_seconds(spec, first, 1 + images, batch, klass, outdir)
    return max(more - one, 0.0) * 1000 / images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default="default,paper256",
                        help=f"comma-separated: default and/or {', '.join(USER_CONFIGS)}")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median printed)")
    parser.add_argument("--frames", type=int, default=8, help="explorer frames per round")
    parser.add_argument("--images", type=int, help="extra generate images per round (K; default: enough for "
                        "about a second of rendering, at least 4)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: PyTorch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(cpu_summary())
    print(f"# {torch.get_num_threads()} threads, load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}, {args.rounds} interleaved rounds of "
          f"{args.frames} explorer frames and two generate runs (1 and 1+K seeds) per batch size")
    print(f"{'network':<10} {'explorer frame ms':>18} {'generate b1 ms/img':>19} {'generate b8 ms/img':>19} "
          f"{'frame / gen b1':>15}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for name in args.networks.split(","):
            spec = network_spec(name, workdir)
            client, klass = api_client(spec)
            # enough extra images that their rendering, not the timer's noise, is what the difference measures
            images = args.images or max(4, math.ceil(1000 / api_frame_ms(client, klass, range(100, 102))))
            frames, gen1, gen8 = [], [], []
            for r in range(args.rounds):
                base = 1000 * (r + 1)  # new seeds every round, as a page dragging through seeds
                frames.append(api_frame_ms(client, klass, range(base, base + args.frames)))
                gen1.append(generate_image_ms(spec, base, images, 1, klass, workdir / "out"))
                gen8.append(generate_image_ms(spec, base, images, 8, klass, workdir / "out"))
            frame, g1, g8 = (statistics.median(v) for v in (frames, gen1, gen8))
            ratio = f"{frame / g1:15.2f}" if g1 > 0 else f"{'n/a':>15}"
            note = f"  (target < {FRAME_TARGET_MS:g} ms)" if name == "default" else ""
            print(f"{name:<10} {frame:18.1f} {g1:19.1f} {g8:19.1f} {ratio}{note}  K={images}", flush=True)
    print(f"# load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
