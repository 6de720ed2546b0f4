"""The built-in network ``"default"``: a small class-conditional 32×32 digits generator shipped in the package.

It was trained with ``stylegan train`` on scikit-learn's bundled handwritten digits (the command is in the
README), so every command works offline, out of the box. The weights live in
``stylegan/assets/digits32.safetensors`` (our own format: loading it never unpickles anything).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from stylegan.errors import StyleGANError
from stylegan.formats import safetensors_io

BUILTIN_NAMES = ("default",)
FORMAT_NAME = "built-in"
ASSET_NAME = "digits32.safetensors"


def builtin_file() -> Path:
    """The path of the shipped weights file."""
    return Path(str(resources.files("stylegan") / "assets" / ASSET_NAME))


def build_default_network() -> dict[str, Any]:
    """``{'G_ema': generator, 'format': 'built-in'}``: the shipped network, bit-identical on every call."""
    path = builtin_file()
    if not path.is_file():
        raise StyleGANError(f"the built-in network file {path} is missing",
                            "reinstall stylegan (pip install --force-reinstall stylegan)")
    header, tensors = safetensors_io.read_safetensors(path, "the built-in network")
    net, _ = safetensors_io.networks_from_safetensors(header, tensors, "the built-in network")
    return {"G_ema": net["G_ema"], "format": FORMAT_NAME}
