"""Shared pieces of the explorer tests: a client on the built-in network, generate's images as references, and a
tiny StyleGAN3 network whose images depend on the seed."""

from __future__ import annotations

import io
import warnings
import numpy as np
import PIL.Image
import pytest
from torch import nn


@pytest.fixture(scope="module")
def explorer():
    from stylegan.web.session import Explorer

    return Explorer(["default"])


@pytest.fixture(scope="module")
def client(explorer):
    from stylegan.web.app import create_app
    from stylegan.web.projections import Projections

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    return TestClient(create_app(explorer, Projections(explorer)), raise_server_exceptions=False)


def png_pixels(data: bytes) -> np.ndarray:
    """PNG bytes → uint8 ``[H, W]`` (grayscale) or ``[H, W, C]``."""
    return np.array(PIL.Image.open(io.BytesIO(data)))



def seed_dependent_sg3(config: str = "t", seed: int = 0, **overrides) -> nn.Module:
    """A tiny random StyleGAN3 generator (tests/formats/sg3_writer.py) whose images differ from seed to seed."""
    from tests.formats.sg3_writer import randomized_sg3, tiny_sg3_kwargs

    return randomized_sg3(tiny_sg3_kwargs(config, **overrides), seed=seed)
