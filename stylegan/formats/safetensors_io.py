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

import errno
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from stylegan.atomic import atomic_path
from stylegan.errors import StyleGANError
from stylegan.limits import load_json, quote
from stylegan.formats.rebuild import build_with_tensors
from stylegan.networks import network_class
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
        try:
            save_file(_storable(tensors), str(tmp), metadata={METADATA_KEY: json.dumps(header), "format": "pt"})
        except SafetensorError as e:  # safetensors reports a full disk as its own exception, not OSError
            raise _as_os_error(e) from None


def _as_os_error(error: SafetensorError) -> OSError:
    """The OSError behind a safetensors write failure, so that callers
    report it like any other failed write (``No space left on device``). safetensors words the
    code as ``(os error 28)`` or ``Os { code: 28, ... }`` depending on its version."""
    found = re.search(r"(?:os error |code: )(\d+)", str(error))
    code = int(found.group(1)) if found else errno.EIO
    return OSError(code, os.strerror(code) if found else f"write failed ({quote(str(error), 200)})")


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
    header = load_json(metadata[METADATA_KEY], f"the stylegan metadata of {source}", "save the network again")
    _check_header(header, source)
    return header, tensors


def _damaged(source: str, problem: str) -> StyleGANError:
    return StyleGANError(f"cannot read {source}: its stylegan metadata is damaged ({problem})", "save the network again")


def _check_header(header: Any, source: str) -> None:
    """The metadata's layout: every part of the type it must have, before anything reads it."""
    if not isinstance(header, dict):
        raise _damaged(source, f"it is a {type(header).__name__}, not an object")
    if "stylegan_format" not in header or "networks" not in header:
        raise _damaged(source, "no 'stylegan_format' or 'networks' entry")
    version = header["stylegan_format"]
    if version != FORMAT_VERSION:
        raise StyleGANError(f"{source} uses stylegan file format {quote(version)}, this version reads "
                            f"{FORMAT_VERSION}", "upgrade stylegan")
    for part in ("networks", "data", "training"):
        if not isinstance(header.get(part, {}), dict):
            raise _damaged(source, f"'{part}' is a {type(header[part]).__name__}, not an object")
    for key, info in header["networks"].items():
        if not isinstance(info, dict):
            raise _damaged(source, f"the entry of {quote(key)} is a {type(info).__name__}, not an object")
        if info.get("kind") not in ("module", "record"):
            raise _damaged(source, f"{quote(key)} has kind {quote(info.get('kind'))}, not 'module' or 'record'")
        if not isinstance(info.get("class_name"), str):
            raise _damaged(source, f"the class name of {quote(key)} is {quote(info.get('class_name'))}, "
                                   "not a string")
        if not isinstance(info.get("init_kwargs"), dict):
            raise _damaged(source, f"the init_kwargs of {quote(key)} are {quote(info.get('init_kwargs'))}, "
                                   "not an object")


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
        kind, class_name, init_kwargs = info["kind"], info["class_name"], dict(info["init_kwargs"])
        if kind == "module":
            # Settings added after a class's first release: a record written before them lacks the key.
            init_kwargs = {**getattr(network_class(class_name)[1], "record_defaults", {}), **init_kwargs}
            net[key] = build_with_tensors(class_name, init_kwargs, grouped[key], f"{key} in {source}")
        else:
            net[key] = AugmentPipeRecord(class_name=class_name, init_kwargs=init_kwargs, tensors=grouped[key])
    for key, value in dict(header.get("data") or {}).items():
        net.setdefault(key, value)
    return net, extra
