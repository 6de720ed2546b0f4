"""Shared pieces of the explorer tests: a client on the built-in network, and generate's images as references."""

from __future__ import annotations

import io
import warnings
import numpy as np
import PIL.Image
import pytest



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

