"""Speed of video rendering and of the projector on a small network, and the projector's quality.

    python benchmarks/video_speed.py [--device cpu|cuda] [--resolution 64] [--quality-steps 1000]
                                     [--detector-dir DIR] [--threads N]
    python benchmarks/video_speed.py --network config-f --grid 1 --frames 8 --steps 0 [--precision bf16]

Prints frames/s of a 3×3 lerp-video grid (rendering only, and rendering + H.264 encoding), projector
steps/s, and — with --quality-steps N — PSNR / SSIM / LPIPS after N steps on a target the network made
itself from a known w (plus how far the projected w is from that w, relative to where it started).
Without --detector-dir the VGG16 is the tiny TorchScript stand-in from the tests (run from the repo root),
so LPIPS numbers are then only comparable with each other, not with published ones.
``--network config-f|paper256`` renders the random-weight networks users load (benchmarks/user_networks.py)
instead of the small one; ``--grid N`` sets an N×N grid, ``--precision bf16`` renders in bf16,
``--steps 0`` skips the projector.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from stylegan.devices import resolve_device
from stylegan.explore.projection_files import render_projection
from stylegan.explore.projector import ProjectorConfig, project, projector_uint8
from stylegan.explore.quality import image_quality
from stylegan.explore.video import lerp_animation, render_animation
from stylegan.explore.video_io import write_video
from stylegan.metrics.detectors import load_detector
from stylegan.networks import build_network
from stylegan.ops.allocator import tune_cpu_allocator
from stylegan.precision import inference_precision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_info import cpu_summary  # noqa: E402
from user_networks import USER_CONFIGS, user_generator  # noqa: E402


def small_generator(res: int, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    kw = dict(z_dim=128, c_dim=0, w_dim=128, img_resolution=res, img_channels=3, mapping_kwargs=dict(num_layers=4),
              synthesis_kwargs=dict(channel_base=4096, channel_max=128))
    return build_network("Generator", kw).eval().requires_grad_(False).to(device)


def video_speed(G, frames: int, encode: bool, grid: int = 3) -> float:
    anim = lerp_animation(G, list(range(grid * grid)), (grid, grid), num_frames=frames, num_keyframes=3)
    stream = render_animation(G, anim, batch_size=min(grid * grid, 9), progress=False)
    t0 = time.perf_counter()
    if encode:
        with tempfile.TemporaryDirectory() as tmp:
            write_video(Path(tmp) / "v.mp4", stream, fps=30)
    else:
        for _ in stream:
            pass
    return frames / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--steps", type=int, default=50, help="projector steps timed for steps/s")
    parser.add_argument("--quality-steps", type=int, default=0, help="also measure quality after this many steps")
    parser.add_argument("--detector-dir", default=None, help="folder with the real vgg16.pt")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--network", choices=list(USER_CONFIGS), help="a user-size network instead of the small one")
    parser.add_argument("--grid", type=int, default=3, help="N: an N×N video grid")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tune_cpu_allocator()  # as the lerp-video and project commands run (stylegan.ops.allocator)
    print(f"# {cpu_summary()}")
    device = resolve_device(args.device)
    G = user_generator(args.network).to(device) if args.network else small_generator(args.resolution, device)
    with inference_precision(args.precision):
        run(G, device, args)


def run(G, device: torch.device, args) -> None:
    if args.detector_dir is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.detector_standins import write_detectors

        detector_dir = write_detectors(tempfile.mkdtemp())
        vgg_name = "stand-in VGG16"
    else:
        detector_dir, vgg_name = args.detector_dir, "VGG16"
    vgg = load_detector("vgg16", detector_dir=detector_dir, device=device)

    res, n = G.img_resolution, args.grid
    name = args.network or f"{res}x{res} RGB, z/w 128, channels <= 128"
    print(f"network: {name}; device {device}, {torch.get_num_threads()} threads, {args.precision}, "
          f"load average {os.getloadavg()[0]:.1f}")
    video_speed(G, 2, False, n)  # warm-up
    print(f"lerp-video {n}x{n} grid ({n * res}x{n * res}), batch {min(n * n, 9)}:")
    print(f"  render only      {video_speed(G, args.frames, False, n):8.2f} frames/s")
    print(f"  render + H.264   {video_speed(G, args.frames, True, n):8.2f} frames/s")
    if args.steps <= 0:
        return

    z = torch.from_numpy(np.random.RandomState(5).randn(1, G.z_dim)).float().to(device)
    w_true = G.mapping(z, None)
    target = torch.from_numpy(projector_uint8(G.synthesis(w_true, noise_mode="const"))[0]).permute(2, 0, 1)
    t0 = time.perf_counter()
    project(G, target, vgg, config=ProjectorConfig(num_steps=args.steps), progress=False)
    elapsed = time.perf_counter() - t0
    print(f"projector ({vgg_name}): {args.steps / elapsed:.1f} steps/s over {args.steps} steps "
          f"(including the 10k-sample w_avg)")

    if args.quality_steps:
        t0 = time.perf_counter()
        result = project(G, target, vgg, config=ProjectorConfig(num_steps=args.quality_steps), progress=False)
        elapsed = time.perf_counter() - t0
        proj = next(render_projection(G, result.final_ws))
        q = image_quality(target.permute(1, 2, 0).numpy(), proj, vgg)
        start = next(render_projection(G, result.w_avg[None]))
        q0 = image_quality(target.permute(1, 2, 0).numpy(), start, vgg)
        rel = float((result.final_ws.to(device) - w_true).norm() / (result.w_avg[None].to(device) - w_true).norm())
        print(f"quality after {args.quality_steps} steps ({elapsed:.0f} s), generated target (seed 5):")
        print(f"  PSNR {q['psnr']:.2f} dB   SSIM {q['ssim']:.4f}   LPIPS ({vgg_name}) {q['lpips']:.4f}")
        print(f"  start (w_avg): PSNR {q0['psnr']:.2f} dB   SSIM {q0['ssim']:.4f}   LPIPS {q0['lpips']:.4f}")
        print(f"  |w - w_true| / |w_avg - w_true| = {rel:.3f}")


if __name__ == "__main__":
    main()
