"""The CelebA-HQ attribute classifiers of the linear separability metric (``ls``): official TF pickles → ours.

Each ``celebahq-classifier-NN-<attribute>.pkl`` holds one ``dnnlib.tflib`` Network (not a ``(G, D, Gs)``
snapshot): a progressive-growing discriminator read at full resolution (256×256 for the official files)
without the minibatch-stddev layer, whose single output is the attribute's logit ℓ (the metric turns it
into ``softmax([ℓ, −ℓ])``). Two build functions make such a network and both are accepted, told apart by
the ``build_func_name`` the file records:

* ``D_paper`` (ProGAN): FromRGB, per block conv 3×3 then conv 3×3 fused with the 2× average
  (``Conv1_down``), at 4×4 conv, dense, dense with one output; no blur; leaky ReLU 0.2.
* ``D_basic`` (StyleGAN v1): the same layers, with a ``[1, 2, 1]`` blur before each downscaling conv and
  the fused downscaling only from 128² up (``fused_scale='auto'``), as its kwargs say.

Both use the same variable names, which map onto our ``StyleGAN1Discriminator`` (blur off for ProGAN).
The layout is verified against the file: the build function, the static kwargs (RGB input, no
minibatch-stddev layer, one output) and every variable's name and shape; anything else is refused with
an error naming what was found. The file's build source is never run (see ``tf_pickle``). Both official
build functions ignore keyword arguments they do not know; so does this reader.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from torch import nn

from stylegan.errors import StyleGANError
from stylegan.formats.tf_common import (
    TensorMap,
    TFNetwork,
    Variables,
    build_converted,
    check_lod,
    check_positive_int,
    check_resolution,
)
from stylegan.formats.tf_pickle import read_tf_pickle
from stylegan.formats.tf_stylegan1 import map_discriminator_blocks
from stylegan.limits import quote, shorten

# The 40 CelebA attributes in the order (and spelling) of the official file names, index = NN.
ATTRIBUTES: tuple[str, ...] = (
    "male", "smiling", "attractive", "wavy-hair", "young", "5-o-clock-shadow", "arched-eyebrows",
    "bags-under-eyes", "bald", "bangs", "big-lips", "big-nose", "black-hair", "blond-hair", "blurry",
    "brown-hair", "bushy-eyebrows", "chubby", "double-chin", "eyeglasses", "goatee", "gray-hair",
    "heavy-makeup", "high-cheekbones", "mouth-slightly-open", "mustache", "narrow-eyes", "no-beard",
    "oval-face", "pale-skin", "pointy-nose", "receding-hairline", "rosy-cheeks", "sideburns",
    "straight-hair", "wearing-earrings", "wearing-hat", "wearing-lipstick", "wearing-necklace",
    "wearing-necktie",
)

PROGAN = "D_paper"  # networks_progan.D_paper
STYLEGAN1 = "D_basic"  # networks_stylegan.D_basic
_BUILD_FUNCS = {PROGAN: "ProGAN's D_paper", STYLEGAN1: "StyleGAN's D_basic"}
_EXPECTED = ("an attribute classifier is one ProGAN-style discriminator network (D_paper or D_basic) without "
             "the minibatch-stddev layer and with one output: use the official celebahq-classifier-NN-*.pkl files")
_DAMAGED = "the file is damaged; download or copy it again"


def classifier_file_name(index: int) -> str:
    """``celebahq-classifier-00-male.pkl`` … ``celebahq-classifier-39-wearing-necktie.pkl``."""
    return f"celebahq-classifier-{index:02d}-{ATTRIBUTES[index]}.pkl"


def read_classifier(path: Path, source: str | None = None) -> TFNetwork:
    """The one network of a classifier pickle as a plain record (restricted unpickler, nothing run)."""
    source = source or str(path)
    entries = read_tf_pickle(Path(path), source)
    if set(entries) != {"G_ema"}:  # read_tf_pickle names a lone network G_ema, a snapshot G/D/G_ema
        raise StyleGANError(f"{source} is not an attribute classifier: it is a (G, D, Gs) network snapshot",
                            _EXPECTED)
    return entries["G_ema"]


def _setting(kwargs: dict[str, Any], name: str, default: Any) -> Any:
    """A static kwarg as the build function sees it (absent or None = its default)."""
    value = kwargs.get(name)
    return default if value is None else value


def _architecture(net: TFNetwork, what: str) -> dict[str, Any]:
    """Our StyleGAN1Discriminator's init kwargs for the classifier ``net``, after checking it is one."""
    if net.build_func_name not in _BUILD_FUNCS:
        raise StyleGANError(f"{what} is not an attribute classifier: its build function is "
                            f"{quote(shorten(net.build_func_name, 60))}", _EXPECTED)
    if net.components:
        raise StyleGANError(f"{what} is not an attribute classifier: it has sub-networks "
                            f"({shorten(', '.join(net.components), 80)})", _EXPECTED)
    kw, progan = net.static_kwargs, net.build_func_name == PROGAN
    channels = check_positive_int(_setting(kw, "num_channels", 1), "num_channels", what)
    if channels != 3:
        raise StyleGANError(f"{what} takes {channels}-channel images (num_channels={channels}), not RGB", _EXPECTED)
    mbstd = _setting(kw, "mbstd_group_size", 4)
    if not isinstance(mbstd, int) or isinstance(mbstd, bool):
        raise StyleGANError(f"{what} has mbstd_group_size={quote(mbstd)}, expected an integer", _DAMAGED)
    if mbstd > 1:  # a batch statistic: such a network's logit would depend on the other images in the batch
        raise StyleGANError(f"{what} has a minibatch-stddev layer (mbstd_group_size={mbstd}), which the attribute "
                            "classifiers do not have", _EXPECTED)
    label_size = check_positive_int(_setting(kw, "label_size", 0), "label_size", what)
    if label_size and not progan:  # D_basic gives one score per label; D_paper always one output
        raise StyleGANError(f"{what} is a conditional discriminator (label_size={label_size}), not a "
                            "one-logit classifier", _EXPECTED)
    if _setting(kw, "use_wscale", True) is not True:
        raise StyleGANError(f"{what} was built with use_wscale={quote(kw.get('use_wscale'))}, which is not "
                            "supported (the official classifiers use equalized learning rate)", _EXPECTED)
    fused = _setting(kw, "fused_scale", True if progan else "auto")
    if progan and fused is not True:  # ProGAN's unfused block activates before averaging: another layer order
        raise StyleGANError(f"{what} is a D_paper built with fused_scale={quote(fused)}, which is not supported",
                            _EXPECTED)
    if fused not in (True, False, "auto") or isinstance(fused, int) and not isinstance(fused, bool):
        raise StyleGANError(f"{what} has fused_scale={quote(fused)}, expected True, False or 'auto'", _DAMAGED)
    activation = "lrelu" if progan else _setting(kw, "nonlinearity", "lrelu")
    if activation not in ("lrelu", "relu"):
        raise StyleGANError(f"{what} has nonlinearity={quote(activation)}, expected 'lrelu' or 'relu'", _DAMAGED)
    taps = None if progan else kw.get("blur_filter", [1, 2, 1])
    if taps is not None and not (isinstance(taps, (list, tuple)) and len(taps) <= 16
                                 and all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in taps)):
        raise StyleGANError(f"{what} has blur_filter={quote(taps)}, expected a short list of numbers", _DAMAGED)
    return dict(
        c_dim=0, img_resolution=check_resolution(_setting(kw, "resolution", 32), what), img_channels=3,
        fmap_base=check_positive_int(_setting(kw, "fmap_base", 8192), "fmap_base", what),
        fmap_decay=float(_setting(kw, "fmap_decay", 1.0)),
        fmap_max=check_positive_int(_setting(kw, "fmap_max", 512), "fmap_max", what),
        activation=activation, mbstd_group_size=0, mbstd_num_channels=1,
        blur_filter=[float(t) for t in taps] if taps else None, fused_scale=fused, progressive=False,
    )


def convert_classifier(net: TFNetwork, what: str) -> nn.Module:
    """A classifier record → our StyleGAN1Discriminator (CPU, eval): images ``[N, 3, R, R]`` in [−1, 1] →
    logits ``[N, 1]``. Variables must be exactly those of the layout (the lower-resolution FromRGB layers
    of progressive growing are unused at lod 0 and dropped)."""
    init_kwargs = _architecture(net, what)
    variables = Variables(net.variables, what)
    check_lod(variables, "lod")
    variables.ignore(r"FromRGB_lod[1-9][0-9]*/(weight|bias)")
    tm = TensorMap(variables)
    tm.conv_layer("fromrgb_weight", "fromrgb_bias", "FromRGB_lod0")
    map_discriminator_blocks(tm, init_kwargs["img_resolution"])
    variables.finish()
    try:
        return build_converted("StyleGAN1Discriminator", init_kwargs, tm.tensors, what)
    except StyleGANError as e:
        if re.search(r"\bout\.(weight|bias)\b", e.what):
            raise StyleGANError(f"{what} is not a one-logit classifier: {e.what}", _EXPECTED) from None
        raise


def load_classifier(path: Path, source: str | None = None) -> nn.Module:
    """Read and convert one classifier pickle (see :func:`convert_classifier`)."""
    source = source or str(path)
    net = read_classifier(Path(path), source)
    try:
        return convert_classifier(net, f"attribute classifier {source}")
    except (IndexError, ValueError, TypeError, KeyError, OverflowError) as e:  # malformed values deep inside
        raise StyleGANError(f"cannot convert attribute classifier {source}: a variable or kwarg has an "
                            f"unexpected form ({shorten(str(e))})", _DAMAGED) from None


__all__ = ["ATTRIBUTES", "classifier_file_name", "convert_classifier", "load_classifier", "read_classifier"]
