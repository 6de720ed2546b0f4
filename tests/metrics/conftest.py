"""Fixtures for the metric tests: stand-in detectors, tiny datasets made with the dataset tool, tiny networks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import PIL.Image
import pytest
import torch

import stylegan
from stylegan.cli import main
from stylegan.data import convert_dataset
from stylegan.networks import Generator
from tests.detector_standins import write_detectors


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def run(capsys):
    """``run("metrics", ...)`` → Result(exit code, stdout, stderr) of ``stylegan ...``, in-process."""

    def invoke(*args) -> Result:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


@pytest.fixture(scope="session")
def detector_dir(tmp_path_factory):
    return write_detectors(tmp_path_factory.mktemp("detectors"))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test gets its own download/statistics cache and no detector folder from the environment."""
    monkeypatch.setenv("STYLEGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("STYLEGAN_DETECTOR_DIR", raising=False)


def make_dataset(root, n: int, size: int = 16, channels: int = 3, classes: int = 0, seed: int = 0):
    """A dataset ZIP written by the dataset tool from ``n`` smooth random images (labels i % classes)."""
    src = root / "src"
    src.mkdir(parents=True)
    rng = np.random.RandomState(seed)
    for i in range(n):
        small = rng.randint(0, 256, size=(4, 4, channels), dtype=np.uint8)
        img = PIL.Image.fromarray(small[..., 0] if channels == 1 else small).resize((size, size), PIL.Image.BILINEAR)
        img.save(src / f"img{i:03d}.png")
    if classes:
        import json
        (src / "dataset.json").write_text(json.dumps({"labels": [[f"img{i:03d}.png", i % classes] for i in range(n)]}))
    dest = root / "data.zip"
    convert_dataset(src, dest, progress=False)
    return dest


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """40 RGB 16×16 images, unlabeled."""
    return make_dataset(tmp_path_factory.mktemp("ds"), 40)


@pytest.fixture(scope="session")
def labeled_dataset(tmp_path_factory):
    """30 RGB 16×16 images with 3 classes."""
    return make_dataset(tmp_path_factory.mktemp("ds_lab"), 30, classes=3)


def tiny_generator(c_dim: int = 0, channels: int = 3, resolution: int = 16, seed: int = 1) -> Generator:
    torch.manual_seed(seed)
    G = Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=resolution, img_channels=channels,
                  mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=128, channel_max=8))
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)  # so per-pixel noise visibly matters
    return G.eval().requires_grad_(False)


@pytest.fixture(scope="session")
def G():
    return tiny_generator()


@pytest.fixture(scope="session")
def network_file(tmp_path_factory, G):
    path = tmp_path_factory.mktemp("net") / "network-snapshot-000120.safetensors"
    stylegan.save_network({"G_ema": G}, path)
    return path
