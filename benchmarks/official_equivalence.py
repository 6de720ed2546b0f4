"""Same numbers as the official code: relative L2 of our networks against NVIDIA's, for the same weights.

    python benchmarks/official_equivalence.py --official /path/to/stylegan2-ada-pytorch [--stylegan3 /path/to/stylegan3]

For each configuration the official Generator and Discriminator are built with random weights (every parameter
and buffer perturbed, so zero initialisations cannot hide a mismatch), pickled exactly as the official training
loop pickles a snapshot, read back with ``stylegan.load_network`` (the restricted unpickler: none of the official
code runs there) and evaluated beside the official modules on the CPU in float32. The table gives the worst
relative L2 error over ψ 1 / 0.7 / 0.5 with and without a cutoff, noise 'const' / 'none', and per-layer ws; fp16
configurations are compared with the official ``force_fp32=True``. The official code runs its reference ops here
(no CUDA plugins are built on a CPU).
"""

from __future__ import annotations

import argparse
import copy
import io
import pickle
import sys
import tempfile
from pathlib import Path

import torch

import stylegan

CONFIGS = {  # name: (G kwargs, D kwargs), both networks at 32² unless said otherwise
    "unconditional, skip / resnet, 8 mapping layers": (
        dict(mapping_kwargs=dict(num_layers=8)), dict(architecture="resnet")),
    "unconditional, orig / orig, 2 layers": (
        dict(mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(architecture="orig")),
        dict(architecture="orig")),
    "unconditional, resnet / skip, 1 layer": (
        dict(mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(architecture="resnet")),
        dict(architecture="skip")),
    "conditional (10 classes), skip / resnet": (dict(c_dim=10), dict(c_dim=10)),
    "grayscale 64², skip / resnet": (dict(img_channels=1, img_resolution=64), dict(img_channels=1, img_resolution=64)),
    "conv_clamp 0.5, resnet / resnet": (
        dict(synthesis_kwargs=dict(architecture="resnet", conv_clamp=0.5)),
        dict(architecture="resnet", conv_clamp=0.5)),
    "fp16 blocks + clamp 256": (
        dict(synthesis_kwargs=dict(num_fp16_res=2, conv_clamp=256)), dict(num_fp16_res=2, conv_clamp=256)),
}


def official_pair(networks, g_extra: dict, d_extra: dict, seed: int):
    """The official G, G_ema and D of one configuration with every tensor perturbed (seeded)."""
    res = g_extra.get("img_resolution", 32)
    g_kwargs = dict(z_dim=32, c_dim=0, w_dim=32, img_resolution=res, img_channels=3,
                    mapping_kwargs={}, synthesis_kwargs=dict(channel_base=2048, channel_max=64))
    for key, value in g_extra.items():
        g_kwargs[key] = {**g_kwargs[key], **value} if isinstance(value, dict) else value
    d_kwargs = dict(c_dim=g_kwargs["c_dim"], img_resolution=res, img_channels=g_kwargs["img_channels"],
                    channel_base=2048, channel_max=64, **{k: v for k, v in d_extra.items() if k not in g_kwargs})
    torch.manual_seed(seed)
    G = networks.Generator(**g_kwargs).eval()
    D = networks.Discriminator(**d_kwargs).eval()
    G_ema = copy.deepcopy(G)
    noise = torch.Generator().manual_seed(seed + 1)
    for module in (G, G_ema, D):
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            if "resample_filter" in name:
                continue
            with torch.no_grad():
                tensor.add_(0.3 * torch.randn(tensor.shape, generator=noise, dtype=tensor.dtype))
    return G, G_ema, D


def rel_l2(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    ours, theirs = ours.double(), theirs.double()
    return float((ours - theirs).norm() / theirs.norm())


@torch.no_grad()
def compare(G_off, G_ours, D_off, D_ours, c_dim: int, fp16: bool) -> dict[str, float]:
    gen = torch.Generator().manual_seed(7)
    n = 4
    z = torch.randn(n, G_off.z_dim, generator=gen)
    c = torch.eye(max(c_dim, 1))[torch.arange(n) % max(c_dim, 1)] if c_dim else torch.zeros(n, 0)
    extra = dict(force_fp32=True) if fp16 else {}
    worst = dict(G=0.0, mapping=0.0, synthesis=0.0, D=0.0)
    for psi in (1.0, 0.7, 0.5):
        for cutoff in (None, 4):
            w_off = G_off.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff)
            w_ours = G_ours.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff)
            worst["mapping"] = max(worst["mapping"], rel_l2(w_ours, w_off))
            for noise_mode in ("const", "none"):
                img_off = G_off(z, c, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode=noise_mode, **extra)
                img_ours = G_ours(z, c, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode=noise_mode)
                worst["G"] = max(worst["G"], rel_l2(img_ours, img_off))
    ws = torch.randn(n, G_off.num_ws, G_off.w_dim, generator=gen)  # a different w per layer
    worst["synthesis"] = rel_l2(G_ours.synthesis(ws, noise_mode="const"),
                                G_off.synthesis(ws, noise_mode="const", **extra))
    img = torch.randn(n, G_off.img_channels, G_off.img_resolution, G_off.img_resolution, generator=gen)
    worst["D"] = rel_l2(D_ours(img, c), D_off(img, c, **extra))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", required=True, metavar="DIR", help="a clone of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(args.official).resolve()))
    from training import networks  # noqa: E402  (the official package, found through --official)

    print(f"{'configuration':<50s} {'G':>9s} {'G_ema':>9s} {'mapping':>9s} {'synthesis':>9s} {'D':>9s}")
    for seed, (name, (g_extra, d_extra)) in enumerate(CONFIGS.items()):
        G, G_ema, D = official_pair(networks, g_extra, d_extra, seed)
        buffer = io.BytesIO()
        pickle.dump(dict(G=G, D=D, G_ema=G_ema, augment_pipe=None, training_set_kwargs=None), buffer)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "network-snapshot-000000.pkl"
            path.write_bytes(buffer.getvalue())
            ours = stylegan.load_network(str(path))
        fp16 = "fp16" in name
        main_err = compare(G, ours["G"], D, ours["D"], G.c_dim, fp16)
        ema_err = compare(G_ema, ours["G_ema"], D, ours["D"], G.c_dim, fp16)
        print(f"{name:<50s} {main_err['G']:9.1e} {ema_err['G']:9.1e} {main_err['mapping']:9.1e} "
              f"{main_err['synthesis']:9.1e} {main_err['D']:9.1e}")


if __name__ == "__main__":
    main()
