"""StyleGAN3 generator speed on the CPU at 256²: ours beside the official code's reference ops.

    python benchmarks/stylegan3_speed.py --official /tmp/off/stylegan3 [--batch 1] [--repeats 2] [--threads N]

For stylegan3-t and stylegan3-r at the official 256² settings (t: channel_base 32768, channel_max 512;
r: 65536 / 1024, 1×1 convolutions, radial filters; fp32) prints seconds per image of our generator and,
when ``--official`` names a checkout of NVlabs/stylegan3, of its ``training.networks_stylegan3.Generator``
with the same weights on the CPU (where its filtered_lrelu/bias_act/upfirdn2d run their ``ref`` paths),
plus the ratio and the relative L2 difference of the images. The official code is only imported here,
from the path given, for comparison; nothing in the package or the tests uses it.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from stylegan.networks.stylegan3 import StyleGAN3Generator
from user_networks import put_official_code_on_path  # benchmarks/ is on sys.path when run as a script

CONFIGS = {
    "stylegan3-t": dict(channel_base=32768, channel_max=512),
    "stylegan3-r": dict(channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True),
}


def generator_kwargs(config: str) -> dict:
    return dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=256, img_channels=3, mapping_kwargs={"num_layers": 2},
                num_fp16_res=0, **CONFIGS[config])


def seconds_per_image(G: torch.nn.Module, batch: int, repeats: int) -> tuple[float, torch.Tensor]:
    z = torch.randn([batch, 512], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        img = G(z, None, truncation_psi=0.7)  # warm-up (and the image for the comparison)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            G(z, None, truncation_psi=0.7)
            best = min(best, time.perf_counter() - start)
    return best / batch, img


def official_generator(root: str, config: str, state: dict) -> torch.nn.Module:
    put_official_code_on_path(root)
    from training.networks_stylegan3 import Generator  # noqa: E402  (the official code, for comparison only)

    G = Generator(**generator_kwargs(config)).eval().requires_grad_(False)
    G.load_state_dict(state)
    return G


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", help="path of an NVlabs/stylegan3 checkout to compare with")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# CPU, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}, batch {args.batch}, "
          f"256², fp32, best of {args.repeats}")
    print(f"{'config':<12} {'ours s/img':>11} {'official s/img':>15} {'ratio':>7} {'rel L2':>9}")
    for config in CONFIGS:
        torch.manual_seed(0)
        ours = StyleGAN3Generator(**generator_kwargs(config)).eval().requires_grad_(False)
        t_ours, img_ours = seconds_per_image(ours, args.batch, args.repeats)
        if args.official:
            theirs = official_generator(args.official, config, ours.state_dict())
            t_theirs, img_theirs = seconds_per_image(theirs, args.batch, args.repeats)
            err = float((img_ours - img_theirs).norm() / img_theirs.norm())
            print(f"{config:<12} {t_ours:>11.2f} {t_theirs:>15.2f} {t_theirs / t_ours:>6.2f}× {err:>9.1e}")
        else:
            print(f"{config:<12} {t_ours:>11.2f} {'-':>15} {'-':>7} {'-':>9}")


if __name__ == "__main__":
    main()
