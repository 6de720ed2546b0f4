"""Tiny networks with perturbed weights, and official-format snapshots made from them."""

from __future__ import annotations

import pytest
import torch

from stylegan.networks import Discriminator, Generator
from tests.formats.official_writer import AugmentPipe, write_official_pickle

C_DIM = 3


def perturbed(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter and buffer moved off its initial value, so a skipped copy would show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if "resample_filter" not in name:
                t.add_(torch.randn(t.shape, generator=g) * 0.3)
    return module.eval().requires_grad_(False)


def tiny_generator(seed: int = 1, c_dim: int = C_DIM) -> Generator:
    torch.manual_seed(seed)
    G = Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=8, img_channels=3,
                  mapping_kwargs={"num_layers": 2}, synthesis_kwargs={"channel_base": 64, "channel_max": 8})
    return perturbed(G, seed + 100)


def tiny_discriminator(seed: int = 2, c_dim: int = C_DIM) -> Discriminator:
    torch.manual_seed(seed)
    D = Discriminator(c_dim=c_dim, img_resolution=8, img_channels=3, channel_base=64, channel_max=8,
                      mapping_kwargs={"num_layers": 2})
    return perturbed(D, seed + 100)


@pytest.fixture(scope="session")
def snapshot() -> dict:
    """What an official training snapshot holds: G, D, G_ema, augment_pipe, training_set_kwargs."""
    augment_pipe = AugmentPipe(xflip=1, rotate90=1, xint=1)
    augment_pipe.p.fill_(0.25)
    return {"training_set_kwargs": {"class_name": "training.dataset.ImageFolderDataset", "path": "tiny.zip",
                                    "use_labels": True, "max_size": 10, "xflip": False, "resolution": 8},
            "G": tiny_generator(1), "D": tiny_discriminator(2), "G_ema": tiny_generator(3),
            "augment_pipe": augment_pipe.eval()}


@pytest.fixture(scope="session")
def snapshot_pkl(snapshot, tmp_path_factory):
    return write_official_pickle(tmp_path_factory.mktemp("official") / "network-snapshot-000000.pkl", snapshot)


def assert_same_tensors(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for name in sa:
        assert sa[name].dtype == sb[name].dtype and torch.equal(sa[name], sb[name]), name
