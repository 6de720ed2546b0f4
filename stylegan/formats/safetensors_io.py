"""Our own network files: safetensors with one JSON metadata entry.

Tensors are named ``<entry>.<state_dict name>`` (e.g. ``G_ema.mapping.fc0.weight``); extra tensors (a
training snapshot's optimizer state) keep their own names. The metadata entry ``"stylegan"`` holds::

    {"stylegan_format": "1",
     "networks": {"G_ema": {"kind": "module", "class_name": "Generator", "init_kwargs": {...}}, ...},
     "data": {"training_set_kwargs": {...}},    # JSON entries of the network dict
     "training": {...}}                          # optional, whatever the trainer passed

Reading it never unpickles anything: safetensors holds only raw tensor bytes and JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from stylegan.atomic import atomic_path
from stylegan.errors import StyleGANError
from stylegan.formats.rebuild import build_with_tensors
from stylegan.formats.records import AugmentPipeRecord, plain_data
from stylegan.networks import NETWORK_CLASSES

FORMAT_NAME = "stylegan safetensors"
METADATA_KEY = "stylegan"
FORMAT_VERSION = "1"
_SKIPPED_KEYS = ("format",)  # load_network's description of where a dict came from, not data


def _json(value: Any, what: str) -> Any:
    value = plain_data(value)
    try:
        json.dumps(value)
    except (TypeError, ValueError) as e:
        raise StyleGANError(f"cannot save {what}: it is not JSON data ({e})",
                            "pass only networks, augment pipes and plain dicts/lists/numbers/strings") from None
    return value


def _entry(key: str, value: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Metadata and tensors of one network-like entry."""
    if isinstance(value, AugmentPipeRecord):
        info = {"kind": "record", "class_name": value.class_name}
        init_kwargs, tensors = value.init_kwargs, value.state_dict()
    else:
        class_name = getattr(value, "class_name", type(value).__name__)
        buildable = class_name in NETWORK_CLASSES and isinstance(value, NETWORK_CLASSES[class_name])
        info = {"kind": "module" if buildable else "record", "class_name": class_name}
        init_kwargs, tensors = getattr(value, "init_kwargs", {}), value.state_dict()
    info["init_kwargs"] = _json(init_kwargs, f"{key}'s init_kwargs")
    return info, {f"{key}.{name}": t for name, t in tensors.items()}


def _storable(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """CPU, contiguous, and no two tensors sharing memory (safetensors refuses shared storage)."""
    out, seen = {}, set()
    for name, t in tensors.items():
        t = t.detach().to("cpu").contiguous()
        storage = t.untyped_storage()
        if storage.data_ptr() in seen or storage.nbytes() != t.numel() * t.element_size():
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        out[name] = t
    return out


def save_network(net: Mapping[str, Any], path: str | os.PathLike, *,
                 extra_tensors: Mapping[str, torch.Tensor] | None = None,
                 training: Mapping[str, Any] | None = None) -> None:
    """Write ``net`` (a ``load_network``-style dict) to ``path`` as a stylegan ``.safetensors`` file.

    Modules (``G``, ``D``, ``G_ema``, an augment pipe) are stored as tensors plus class name and init
    kwargs; JSON values (``training_set_kwargs``) go into the metadata; ``None`` entries and the ``format``
    description are skipped. ``extra_tensors`` (names must not start with an entry's ``key.``) and
    ``training`` (JSON) are for training snapshots. The file appears atomically: a failed write leaves
    any previous file at ``path`` untouched.
    """
    if "G_ema" not in net or not isinstance(net["G_ema"], nn.Module):
        raise StyleGANError("cannot save a network dict without a G_ema module",
                            "pass the dict load_network returned, or add your generator as net['G_ema']")
    networks: dict[str, Any] = {}
    data: dict[str, Any] = {}
    tensors: dict[str, torch.Tensor] = {}
    for key, value in net.items():
        if value is None or key in _SKIPPED_KEYS:
            continue
        if "." in key:
            raise StyleGANError(f"cannot save entry {key!r}: names must not contain '.'", "rename the entry")
        if isinstance(value, (nn.Module, AugmentPipeRecord)):
            networks[key], entry_tensors = _entry(key, value)
            tensors.update(entry_tensors)
        else:
            data[key] = _json(value, f"entry {key!r}")
    for name in extra_tensors or {}:
        if name.split(".", 1)[0] in networks or name in tensors:
            raise StyleGANError(f"cannot save extra tensor {name!r}: it clashes with network {name.split('.')[0]}",
                                "give extra tensors a prefix of their own")
    tensors.update(extra_tensors or {})
    header = {"stylegan_format": FORMAT_VERSION, "networks": networks, "data": data}
    if training is not None:
        header["training"] = _json(training, "the training metadata")
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(_storable(tensors), str(tmp), metadata={METADATA_KEY: json.dumps(header), "format": "pt"})


def read_safetensors(path: Path, source: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The parsed ``stylegan`` metadata and every tensor, bit-exact, on the CPU."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise StyleGANError(f"cannot read {source}: the safetensors file is truncated or corrupt ({e})",
                            "download or copy the file again") from None
    if METADATA_KEY not in metadata:
        raise StyleGANError(f"{source} is a safetensors file but not a stylegan network file (no '{METADATA_KEY}' "
                            "metadata)", "convert the network with `stylegan convert`, or save it with "
                            "stylegan.save_network")
    try:
        header = json.loads(metadata[METADATA_KEY])
        version = header["stylegan_format"]
        networks = dict(header["networks"])
    except (ValueError, KeyError, TypeError) as e:
        raise StyleGANError(f"cannot read {source}: its stylegan metadata is damaged ({e})",
                            "save the network again") from None
    if version != FORMAT_VERSION:
        raise StyleGANError(f"{source} uses stylegan file format {version}, this version reads {FORMAT_VERSION}",
                            "upgrade stylegan")
    header["networks"] = networks
    return header, tensors


def networks_from_safetensors(header: dict[str, Any], tensors: dict[str, torch.Tensor],
                              source: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(network dict, extra tensors): our modules rebuilt from ``read_safetensors``' output."""
    grouped: dict[str, dict[str, torch.Tensor]] = {key: {} for key in header["networks"]}
    extra: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        key, _, rest = name.partition(".")
        if key in grouped and rest:
            grouped[key][rest] = t
        else:
            extra[name] = t
    net: dict[str, Any] = {}
    for key, info in header["networks"].items():
        try:
            kind, class_name, init_kwargs = info["kind"], info["class_name"], dict(info["init_kwargs"])
        except (KeyError, TypeError) as e:
            raise StyleGANError(f"cannot read {source}: the metadata of {key} is damaged ({e})",
                                "save the network again") from None
        if kind == "module":
            net[key] = build_with_tensors(class_name, init_kwargs, grouped[key], f"{key} in {source}")
        else:
            net[key] = AugmentPipeRecord(class_name=class_name, init_kwargs=init_kwargs, tensors=grouped[key])
    for key, value in dict(header.get("data") or {}).items():
        net.setdefault(key, value)
    return net, extra
