"""Fixtures for the CLI tests: run `stylegan ...` in-process, and small network files."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

import stylegan
from stylegan.cli import main
from stylegan.networks import Discriminator, Generator


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def run(capsys):
    """``run("generate", "--seeds", "1")`` → Result(exit code, stdout, stderr) of ``stylegan ...``."""

    def invoke(*args: str) -> Result:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


@pytest.fixture(scope="session")
def G():
    """The built-in default generator (32×32 grayscale, c_dim 10)."""
    return stylegan.load_network("default")["G_ema"]


def small_generator(c_dim: int) -> Generator:
    torch.manual_seed(1)
    G = Generator(z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=16, img_channels=3,
                  mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=256, channel_max=16))
    with torch.no_grad():
        G.mapping.w_avg.normal_()  # so truncation visibly does something
    return G.eval().requires_grad_(False)


@pytest.fixture(scope="session")
def uncond_network(tmp_path_factory):
    """An unconditional 16×16 RGB network file with G, D, G_ema and training metadata."""
    path = tmp_path_factory.mktemp("nets") / "uncond.safetensors"
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16).eval()
    stylegan.save_network({"G": small_generator(0), "D": D.requires_grad_(False), "G_ema": small_generator(0),
                           "training_set_kwargs": {"path": "tiny.zip", "resolution": 16, "use_labels": False}},
                          path)
    return path
