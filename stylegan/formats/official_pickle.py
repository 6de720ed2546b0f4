"""Official PyTorch network pickles: stylegan2-ada-pytorch snapshots and the stylegan3 repo's (StyleGAN2
configs, and the alias-free stylegan3-t / stylegan3-r generators, told apart by their SynthesisInput).

A snapshot is a dict with any of ``G``, ``D``, ``G_ema``, ``augment_pipe``, ``training_set_kwargs``.
Each network is a ``torch_utils.persistence`` object: its constructor arguments plus its ``__dict__``
(parameters, buffers, submodules). We read those as plain records (see ``unpickler``) and rebuild our
own modules from the constructor arguments, then copy the tensors in with strict name checking.
"""

from __future__ import annotations

import inspect
import numbers
from pathlib import Path
from typing import Any

from torch import nn

from stylegan.errors import StyleGANError
from stylegan.formats.records import AugmentPipeRecord, PersistentRecord, plain_data
from stylegan.formats.rebuild import build_with_tensors
from stylegan.formats.unpickler import LEGACY_TORCH_SAVE_MAGIC, load_pickle_file
from stylegan.limits import quote, shorten
from stylegan.networks import stylegan3
from stylegan.networks.stylegan2 import MappingNetwork
from stylegan.networks.stylegan3 import StyleGAN3Generator

FORMAT_NAME = "stylegan2-ada-pytorch pickle"
STYLEGAN3_FORMAT_NAME = "stylegan3 pickle"
_DEFAULT_W_AVG_BETA = inspect.signature(MappingNetwork).parameters["w_avg_beta"].default

# The class each snapshot entry must hold.
NETWORK_CLASSES = {"G": "Generator", "D": "Discriminator", "G_ema": "Generator"}

# Official constructor signatures, to map positional ``_init_args`` onto keyword names.
POSITIONAL_NAMES = {
    "Generator": ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs",
                  "synthesis_kwargs"),
    "Discriminator": ("c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
                      "num_fp16_res", "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs",
                      "epilogue_kwargs"),
    "AugmentPipe": ("xflip", "rotate90", "xint", "xint_max", "scale", "rotate", "aniso", "xfrac", "scale_std",
                    "rotate_max", "aniso_std", "xfrac_std", "brightness", "contrast", "lumaflip", "hue",
                    "saturation", "brightness_std", "contrast_std", "hue_max", "saturation_std", "imgfilter",
                    "imgfilter_bands", "imgfilter_std", "noise", "cutout", "noise_std", "cutout_size"),
}

def read_pickle(path: Path, source: str) -> dict[str, Any]:
    """Restricted-unpickle ``path``: the top-level dict with networks still as records.

    A pickle holding one bare Generator is read as ``{'G_ema': generator}``.
    """
    obj = load_pickle_file(path, source)
    if isinstance(obj, PersistentRecord) and obj.class_name == "Generator":
        return {"G_ema": obj}
    if type(obj) is int and obj == LEGACY_TORCH_SAVE_MAGIC:
        raise StyleGANError(f"{source} is a torch.save checkpoint (legacy format), not a network pickle",
                            "pass an official network snapshot (.pkl) or a stylegan .safetensors file")
    if not isinstance(obj, dict):
        raise StyleGANError(f"{source} is not a network pickle: it holds a {type(obj).__name__}",
                            "pass an official network snapshot (.pkl) or a stylegan .safetensors file")
    return obj


def network_init_kwargs(record: PersistentRecord, what: str) -> dict[str, Any]:
    """The record's constructor arguments as keyword arguments (positional ones named officially)."""
    args, kwargs = record.init_args, record.init_kwargs
    names = POSITIONAL_NAMES.get(record.class_name, ())
    if len(args) > len(names):
        raise StyleGANError(f"{what} was built with {len(args)} positional arguments, more than "
                            f"{record.class_name} takes", "the file comes from an unsupported code version")
    for name, value in zip(names, args):
        if name in kwargs:
            raise StyleGANError(f"{what} gives {name} twice", "the file is damaged")
        kwargs[name] = value
    return plain_data(kwargs, f"the settings of {what}")


def network_from_record(record: Any, key: str, source: str) -> nn.Module:
    """Our module for snapshot entry ``key`` (G, D or G_ema), weights copied bit-exactly."""
    what = f"{key} in {source}"
    expected = NETWORK_CLASSES[key]
    if not isinstance(record, PersistentRecord):
        raise StyleGANError(f"{what} is not a persisted network (it is a {type(record).__name__})",
                            "pass an official network snapshot (.pkl) or a stylegan .safetensors file")
    if record.class_name == "Generator" and "SynthesisInput" in record.class_names():
        return _stylegan3_generator(record, what)
    if record.class_name != expected:
        raise StyleGANError(f"{what} is a {shorten(record.class_name)}, expected a {expected}",
                            "the file is not a StyleGAN2 network snapshot")
    kwargs = network_init_kwargs(record, what)
    if record.class_name == "Generator":
        _keep_stored_w_avg_beta(record, kwargs)
    return build_with_tensors(record.class_name, kwargs, record.tensors(), what)


def _stylegan3_generator(record: PersistentRecord, what: str) -> nn.Module:
    """Our StyleGAN3Generator for an alias-free ``Generator`` record (stylegan3-t or -r), tensors copied strictly.

    Its settings are checked by name first: a setting our network does not take is one error naming it
    (a file from a modified code base must not load as something it is not).
    """
    args, kwargs = record.init_args, record.init_kwargs
    names = POSITIONAL_NAMES["Generator"][:6]  # the stylegan3 Generator takes its synthesis settings flat
    if len(args) > len(names):
        raise StyleGANError(f"{what} was built with {len(args)} positional arguments, more than a StyleGAN3 "
                            "Generator takes", "the file comes from an unsupported code version")
    for name, value in zip(names, args):
        if name in kwargs:
            raise StyleGANError(f"{what} gives {name} twice", "the file is damaged")
        kwargs[name] = value
    kwargs = plain_data(kwargs, f"the settings of {what}")
    mapping = kwargs.get("mapping_kwargs")
    if mapping is not None and not isinstance(mapping, dict):
        raise StyleGANError(f"{what}: mapping_kwargs is a {type(mapping).__name__}, expected a dict",
                            "the file is damaged")
    unknown = stylegan3.unknown_settings(kwargs)
    if unknown:
        raise StyleGANError(f"{what} is a StyleGAN3 generator with the setting {quote(unknown[0])}, which "
                            "this tool does not know" + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""),
                            "the file comes from a modified StyleGAN3 code base; only the official "
                            "stylegan3-t and stylegan3-r settings are supported")
    return build_with_tensors(StyleGAN3Generator.class_name, kwargs, record.tensors(), what)


def _keep_stored_w_avg_beta(record: PersistentRecord, kwargs: dict[str, Any]) -> None:
    """Take the mapping network's w_avg decay from its stored attributes when the arguments leave it out.

    The two repositories default it differently (ADA 0.995, stylegan3 0.998), and a file names neither
    its repository nor, usually, the value; the attribute the mapping network kept is the value it used.
    """
    mapping = record.submodules().get("mapping")
    mapping_kwargs = kwargs.get("mapping_kwargs")
    if not isinstance(mapping, PersistentRecord) or not isinstance(mapping_kwargs, dict):
        return
    if "w_avg_beta" in mapping_kwargs or "w_avg_beta" not in mapping.state:
        return
    beta = mapping.state["w_avg_beta"]
    if beta is not None and (isinstance(beta, bool) or not isinstance(beta, numbers.Real)):
        return  # not a decay: leave it to the defaults
    beta = None if beta is None else float(beta)
    if beta != _DEFAULT_W_AVG_BETA:  # the arguments stay as the file has them where our default agrees
        kwargs["mapping_kwargs"] = {**mapping_kwargs, "w_avg_beta": beta}


def augment_pipe_from_record(record: PersistentRecord) -> AugmentPipeRecord:
    return AugmentPipeRecord(class_name=record.class_name, init_kwargs=network_init_kwargs(record, "augment_pipe"),
                             tensors=record.tensors())


def networks_from_pickle(entries: dict[str, Any], source: str) -> dict[str, Any]:
    """Turn ``read_pickle``'s records into our modules and plain data; other entries are dropped."""
    net: dict[str, Any] = {}
    for key in ("G", "D", "G_ema"):
        if entries.get(key) is not None:
            net[key] = network_from_record(entries[key], key, source)
    if isinstance(entries.get("augment_pipe"), PersistentRecord):
        net["augment_pipe"] = augment_pipe_from_record(entries["augment_pipe"])
    if isinstance(entries.get("training_set_kwargs"), dict):
        net["training_set_kwargs"] = plain_data(entries["training_set_kwargs"], f"training_set_kwargs in {source}")
    return net


def format_name(net: dict[str, Any]) -> str:
    """How ``info`` names the file: stylegan3's alias-free networks are told apart from StyleGAN2 ones."""
    return STYLEGAN3_FORMAT_NAME if isinstance(net.get("G_ema"), StyleGAN3Generator) else FORMAT_NAME
