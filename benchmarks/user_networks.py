"""The networks users load, rebuilt with random weights for benchmarks: FFHQ-1024 config-f and paper256.

Random weights give the same arithmetic cost as trained ones (the timings are what matter); the shapes
are the official ones, so a trained file of that configuration runs at the same speed.
"""

from __future__ import annotations

import torch

from stylegan.networks import build_network

# name: (resolution, channel_base); both with channel_max 512, 8 mapping layers, z/w 512, fp32 schedule.
USER_CONFIGS = {
    "config-f": (1024, 32768),  # FFHQ-1024 (StyleGAN2 config F, about 30 M parameters in G)
    "paper256": (256, 16384),  # the ADA paper's 256² setting
}


def generator_kwargs(name: str) -> dict:
    res, channel_base = USER_CONFIGS[name]
    return dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
                mapping_kwargs=dict(num_layers=8),
                synthesis_kwargs=dict(channel_base=channel_base, channel_max=512, num_fp16_res=0, conv_clamp=None))


def user_generator(name: str, seed: int = 0) -> torch.nn.Module:
    """A random-weight generator of the named configuration, or the built-in network for ``default``."""
    if name == "default":
        import stylegan

        return stylegan.load_network("default")["G_ema"]
    torch.manual_seed(seed)
    return build_network("Generator", generator_kwargs(name)).requires_grad_(False)


def official_generator(root: str, name: str, state: dict) -> torch.nn.Module:
    """NVlabs/stylegan2-ada-pytorch's ``training.networks.Generator`` from a clone at ``root``, holding
    ``state`` (our weights). On the CPU its custom ops run their reference paths. Imported only here, for
    comparison; nothing in the package or the tests uses it."""
    put_official_code_on_path(root)
    from training.networks import Generator  # noqa: E402  (the official code, for comparison only)

    G = Generator(**generator_kwargs(name)).eval().requires_grad_(False)
    G.load_state_dict(state)
    return G


def put_official_code_on_path(root: str) -> None:
    """Make an official NVlabs clone at ``root`` importable (``training.*``, ``torch_utils.*``), for the
    benchmarks' comparisons. Its conv2d_gradfix imports pkg_resources, which new setuptools lack: a stand-in
    with the one function it uses is put in its place."""
    import sys
    import types

    sys.path.insert(0, root)
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        from packaging.version import parse

        sys.modules["pkg_resources"] = types.SimpleNamespace(parse_version=parse)
