"""Metric throughput: generation, detectors, the whole generated-image pass, the real pass, and the formulas.

    python benchmarks/metrics_speed.py [--device cpu|cuda] [--num 32] [--resolution 64]

The real Inception-v3 / VGG16 files cannot be downloaded here, so the detectors are stand-ins of realistic
cost written by tests/detector_standins.py (`write_detectors(..., realistic=True)`): the Inception-v3 and
VGG16 layer shapes with random weights, so FLOPs and memory traffic match the real ones while the numbers
they produce mean nothing. The generator has the paper256 channel settings (channel_base 16384, 512 max).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.detector_standins

from stylegan.data import ImageDataset, convert_dataset  # noqa: E402
from stylegan.metrics import formulas  # noqa: E402
from stylegan.metrics.detectors import inception_features, load_detector, vgg16_features  # noqa: E402
from stylegan.metrics.distributed import Shard  # noqa: E402
from stylegan.metrics.sampling import LabelPool, generated_batches, real_batches  # noqa: E402
from stylegan.metrics.stats import FeatureStats  # noqa: E402
from stylegan.networks import build_network  # noqa: E402
from tests.detector_standins import write_detectors  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def make_generator(res: int, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    kw = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3, mapping_kwargs=dict(num_layers=8),
              synthesis_kwargs=dict(channel_base=16384, channel_max=512, num_fp16_res=4, conv_clamp=256))
    return build_network("Generator", kw).eval().requires_grad_(False).to(device)


def make_dataset(folder: Path, n: int, res: int) -> Path:
    src = folder / "src"
    src.mkdir()
    rng = np.random.RandomState(0)
    for i in range(n):
        PIL.Image.fromarray(rng.randint(0, 256, (res, res, 3), dtype=np.uint8)).save(src / f"{i:05d}.png")
    convert_dataset(src, folder / "data.zip", progress=False)
    return folder / "data.zip"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--num", type=int, default=32, help="images per measurement")
    ap.add_argument("--resolution", type=int, default=64, help="generator and dataset resolution")
    ap.add_argument("--batch", type=int, default=32, help="images per detector call")
    args = ap.parse_args()
    device, n, res = torch.device(args.device), args.num, args.resolution
    rows: list[tuple[str, str, str]] = []

    def report(what: str, count: float, seconds: float, unit: str = "img/s") -> None:
        rows.append((what, f"{count / seconds:,.1f}", unit))
        print(f"  {what}: {count / seconds:,.1f} {unit}", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        tmp = Path(tmp)
        print("writing realistic-cost detectors ...", file=sys.stderr)
        det_dir = write_detectors(tmp / "detectors", realistic=True)
        inception = load_detector("inception", detector_dir=det_dir, device=device, progress=False)
        vgg = load_detector("vgg16", detector_dir=det_dir, device=device, progress=False)
        G = make_generator(res, device)
        labels = LabelPool(None, 0)
        images = torch.randint(0, 256, (args.batch, 3, res, res), dtype=torch.uint8, device=device)

        def gen_only():
            for _ in generated_batches(G, n, seed=0, labels=labels, device=device, shard=Shard(), batch=args.batch):
                pass

        gen_only()  # warm-up (TorchScript profiling runs, cuDNN autotuning)
        report(f"generator {res}x{res}, groups of 4", n, timed(gen_only, device))
        for name, det, fn in (("inception", inception, inception_features), ("vgg16", vgg, vgg16_features)):
            fn(det, images)
            calls = max(1, n // args.batch)
            report(f"{name} features (batch {args.batch})", calls * args.batch,
                   timed(lambda: [fn(det, images) for _ in range(calls)], device))

        def gen_and_inception():
            stats = FeatureStats(capture_all=True)
            for _rows, imgs in generated_batches(G, n, seed=0, labels=labels, device=device, shard=Shard(),
                                                 batch=args.batch):
                stats.append(inception_features(inception, imgs))
            stats.finish(Shard())

        report("generation + inception (FID/KID pass)", n, timed(gen_and_inception, device))

        data = make_dataset(tmp, n, res)
        ds = ImageDataset(data)
        workers = 3 if device.type == "cuda" else 0

        def real_pass():
            stats = FeatureStats()
            for imgs in real_batches(ds, n, shard=Shard(), batch=args.batch, workers=workers):
                stats.append(inception_features(inception, imgs.to(device)))
            stats.finish(Shard())

        report(f"dataset decode + inception ({workers} workers)", n, timed(real_pass, device))

        # Formulas at full feature sizes.
        g = torch.Generator().manual_seed(0)
        m = 4000
        a = torch.rand(m, 4096, generator=g).to(device)
        b = torch.rand(m, 4096, generator=g).to(device)
        seconds = timed(lambda: formulas.precision_recall(a, b, k=3, row_batch=1000, col_batch=1000), device)
        report(f"precision/recall distances ({m}+{m} x 4096, 1000x1000 chunks)", 4 * m * m, seconds, "dist/s")
        f1 = torch.randn(2000, 2048, generator=g).to(device)
        f2 = torch.randn(2000, 2048, generator=g).to(device)
        seconds = timed(lambda: formulas.kernel_inception_distance(f1, f2, num_subsets=10, max_subset_size=1000),
                        device)
        report("KID subsets of 1000 x 2048 (float64)", 10, seconds, "subsets/s")
        s = FeatureStats()
        s.append(f1)
        s.finish(Shard())
        seconds = timed(lambda: formulas.frechet_distance(s.mu, s.sigma, s.mu + 0.1, s.sigma), device)
        rows.append(("Frechet distance, 2048 features (float64, CPU)", f"{seconds:.2f}", "s"))

    width = max(len(r[0]) for r in rows)
    print(f"\nmetrics speed on {device} ({torch.get_num_threads()} threads), {n} images at {res}x{res}\n")
    print(f"{'stage'.ljust(width)}  {'rate':>12}  unit")
    print(f"{'-' * width}  {'-' * 12}  ----")
    for what, rate, unit in rows:
        print(f"{what.ljust(width)}  {rate:>12}  {unit}")
    if os.environ.get("STYLEGAN_BENCH_NOTE", "1") != "0":
        print("\nDetectors are realistic-cost stand-ins (Inception-v3 / VGG16 layer shapes, random weights).")


if __name__ == "__main__":
    main()
