"""stylegan: load official StyleGAN / StyleGAN2(-ADA) networks safely, generate, mix, train, measure.

Public API::

    net = stylegan.load_network("ffhq.pkl")   # path, http(s) URL or "default"
    stylegan.save_network(net, "ffhq.safetensors")

``load_network`` and ``save_network`` are imported on first use, so that ``import stylegan`` (and the
``stylegan`` command starting up) does not wait for PyTorch before it is needed.
"""

from __future__ import annotations

from typing import Any

from stylegan.errors import StyleGANError

__version__ = "0.1.0"

__all__ = ["load_network", "save_network", "StyleGANError", "__version__"]

_LAZY = {"load_network": "stylegan.formats", "save_network": "stylegan.formats"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'stylegan' has no attribute {name!r}")
