"""Network files: official PyTorch pickles (restricted unpickler), our safetensors files, downloads."""

from stylegan.formats.cache import download
from stylegan.formats.loader import describe_source, load_network, load_network_file
from stylegan.formats.records import AugmentPipeRecord
from stylegan.formats.safetensors_io import save_network

__all__ = ["load_network", "load_network_file", "save_network", "describe_source", "download", "AugmentPipeRecord"]
