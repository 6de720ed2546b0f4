"""Numerical building blocks in pure PyTorch: FIR resampling, bias + activation, modulated convolution.

Every function here reproduces the arithmetic of the official StyleGAN2-ADA custom ops (their reference
paths) without any compiled extension, so networks built on them give the official pixels.
"""

from stylegan.ops.bias_act import ACTIVATIONS, bias_act
from stylegan.ops.filters import make_filter
from stylegan.ops.resample import conv2d_resample, downsample2d, upfirdn2d, upsample2d
from stylegan.ops.modconv import modulated_conv2d

__all__ = [
    "ACTIVATIONS",
    "bias_act",
    "make_filter",
    "upfirdn2d",
    "upsample2d",
    "downsample2d",
    "conv2d_resample",
    "modulated_conv2d",
]
