"""stylegan: load official StyleGAN2(-ADA) networks safely, generate, mix, train, measure.

Public API::

    net = stylegan.load_network("ffhq.pkl")   # path, http(s) URL or "default"
    stylegan.save_network(net, "ffhq.safetensors")
"""

from stylegan.errors import StyleGANError
from stylegan.formats import load_network, save_network

__version__ = "0.1.0"

__all__ = ["load_network", "save_network", "StyleGANError", "__version__"]
