"""Fixtures for the explore tests: the built-in 'default' network (small, conditional, grayscale)."""

from __future__ import annotations

import pytest

import stylegan


@pytest.fixture(scope="session")
def G():
    """The built-in default generator: 32×32 grayscale, c_dim 10, z/w 64."""
    return stylegan.load_network("default")["G_ema"]
