"""``load_network``: one entry point for every network source (path, URL, built-in name).

The file format is told from the content, not the extension: safetensors (an 8-byte header length and
a JSON header), pickle (``\\x80`` + protocol), ZIP (``PK``); a pickle whose first value is torch.save's magic
number is a legacy torch.save file, read like its ZIP archives.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from stylegan.errors import StyleGANError
from stylegan.formats import (builtin, mmgeneration, official_pickle, rosinality, safetensors_io, tf_pickle,
                              torch_files)
from stylegan.formats.cache import about_cached_file, download, is_url
from stylegan.formats.unpickler import TensorFlowPickleError
from stylegan.limits import shorten

Source = str | os.PathLike
_FILE_FIX = ("pass an official network pickle (.pkl: PyTorch, or TensorFlow StyleGAN/StyleGAN2/ADA), a rosinality "
             ".pt or MMGeneration/mmagic .pth checkpoint, a stylegan .safetensors file, an http(s) URL, or 'default'")


def resolve_source(source: Source, *, progress: bool = True, parsed: list | None = None) -> Path | None:
    """The local file for ``source`` (downloading a URL once), or None for a built-in name.

    A fresh download is parsed before it enters the cache (a cut or HTML body must not); ``parsed``, if
    given, receives that parse, so a caller that wants the network need not read the file twice.
    """
    if isinstance(source, str) and source in builtin.BUILTIN_NAMES:
        return None
    if isinstance(source, str) and is_url(source):
        def validate(path: Path) -> None:
            result = _load_file(path, str(path))
            if parsed is not None:
                parsed.append(result)
        return download(source, progress=progress, validate=validate)
    if not isinstance(source, (str, os.PathLike)):
        raise StyleGANError(f"cannot load a network from an object of type {type(source).__name__}", _FILE_FIX)
    path = Path(source).expanduser()
    try:
        exists = path.exists()
    except OSError as e:  # e.g. a name longer than the file system allows
        raise StyleGANError(f"cannot use {shorten(str(source))} as a path: {e.strerror or e}", _FILE_FIX) from None
    if not exists:
        raise StyleGANError(f"{shorten(str(source))} does not exist", f"check the path; {_FILE_FIX}")
    if path.is_dir():
        raise StyleGANError(f"{source} is a directory, not a network file", "pass the .pkl or .safetensors file in it")
    return path


def detect_format(path: Path) -> str:
    """'safetensors', 'pickle', 'zip' or 'unknown', from the first bytes; errors for empty/unreadable files."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise StyleGANError(f"cannot read {path}: {e.strerror}", "check the file's permissions") from None
    if size == 0:
        raise StyleGANError(f"{path} is empty", "download or copy the file again")
    # safetensors first: its 8-byte length could start with 0x80 like a pickle, but a pickle never has '{' here.
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < (1 << 32):
        return "safetensors"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    return "unknown"


def describe_source(source: Source) -> str:
    """A short description of the source's format, e.g. 'stylegan2-ada-pytorch pickle' or 'built-in'."""
    path = resolve_source(source, progress=False)
    if path is None:
        return builtin.FORMAT_NAME
    kind = detect_format(path)
    if kind == "pickle" and torch_files.torch_file_kind(path) == "legacy":
        return "legacy torch.save file (rosinality or MMGeneration checkpoint)"
    if kind == "pickle":
        with open(path, "rb") as f:  # the first global a TF pickle names is dnnlib.tflib.network.Network
            is_tf = b"dnnlib.tflib" in f.read(4096)
        # A TF pickle's family (v1, StyleGAN2, ADA) is in its build functions: read it (nothing is rebuilt).
        return tf_pickle.describe_tf_pickle(path, str(source)) if is_tf else official_pickle.FORMAT_NAME
    return {"safetensors": safetensors_io.FORMAT_NAME,
            "zip": "torch zip archive (rosinality or MMGeneration checkpoint)", "unknown": "unknown"}[kind]


def _require_g_ema(keys: list[str], source: str) -> None:
    if "G_ema" not in keys:
        raise StyleGANError(f"{source} has no G_ema (it holds: {', '.join(keys) or 'nothing'})",
                            "pass a network snapshot or a file saved with save_network")


def load_network_file(source: Source, *, progress: bool = True) -> tuple[dict[str, Any], dict[str, torch.Tensor],
                                                                         dict[str, Any]]:
    """(network dict as ``load_network`` returns it, extra tensors, training metadata).

    Extra tensors and training metadata come only from stylegan ``.safetensors`` training snapshots;
    other sources give empty dicts.
    """
    fresh_download: list = []
    path = resolve_source(source, progress=progress, parsed=fresh_download)
    if path is None:
        return builtin.build_default_network(), {}, {}
    if fresh_download:  # just downloaded and already parsed to validate it
        return fresh_download[0]
    with about_cached_file(source, path):  # a damaged cached download names its file and how to renew it
        return _load_file(path, str(source))


def _load_file(path: Path, name: str) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any]]:
    """:func:`load_network_file` for a local file (``name`` is how messages call it)."""
    kind = detect_format(path)
    if kind == "pickle" and torch_files.torch_file_kind(path, name) == "legacy":
        kind = "legacy"  # rosinality / MMGeneration checkpoints saved with PyTorch < 1.6 (or asked to)
    if kind == "safetensors":
        header, tensors = safetensors_io.read_safetensors(path, name)
        _require_g_ema(list(header["networks"]), name)
        net, extra = safetensors_io.networks_from_safetensors(header, tensors, name)
        net["format"] = safetensors_io.FORMAT_NAME
        return net, extra, dict(header.get("training") or {})
    if kind == "pickle":
        try:
            entries = official_pickle.read_pickle(path, name)
        except TensorFlowPickleError:  # raised at the file's first global, before anything was built
            tf_entries = tf_pickle.read_tf_pickle(path, name)
            net = tf_pickle.networks_from_tf_pickle(tf_entries, name)
            net["format"] = tf_pickle.format_name(tf_pickle.snapshot_family(tf_entries, name))
            return net, {}, {}
        _require_g_ema([str(k) for k, v in entries.items() if v is not None], name)
        net = official_pickle.networks_from_pickle(entries, name)
        net["format"] = official_pickle.format_name(net)
        return net, {}, {}
    if kind in ("zip", "legacy"):  # torch.save's files: rosinality and MMGeneration/mmagic checkpoints
        obj = torch_files.read_torch_file(path, name)
        if rosinality.is_rosinality(obj):
            return rosinality.networks_from_checkpoint(obj, name), {}, {}
        if mmgeneration.is_mmgeneration(obj):
            return mmgeneration.networks_from_checkpoint(obj, name), {}, {}
        raise rosinality.neither_layout(name, obj, also=mmgeneration.LAYOUT_TEXT, found=mmgeneration.found_text(obj),
                                        container="ZIP archive" if kind == "zip" else "legacy format")
    raise StyleGANError(f"{name} is not a network file (neither a pickle nor a safetensors file)", _FILE_FIX)


def load_network(source: Source, *, progress: bool = True) -> dict[str, Any]:
    """Load a network from a path, an http(s) URL (downloaded once into the cache) or a built-in name.

    Returns a dict with ``'G_ema'`` always; ``'G'``, ``'D'``, ``'augment_pipe'`` (an AugmentPipeRecord)
    and ``'training_set_kwargs'`` (a dict) when the file has them; and ``'format'``, a short description of
    where it came from ('stylegan2-ada-pytorch pickle', 'StyleGAN2 TensorFlow pickle', 'StyleGAN2-ADA
    TensorFlow pickle', 'StyleGAN (v1) TensorFlow pickle', 'rosinality checkpoint (…)', 'stylegan
    safetensors', 'MMGeneration/mmagic checkpoint (…)' or 'built-in'). rosinality checkpoints (torch.save
    files, zip or legacy, read without torch.load) give
    G_ema, and G and D from train.py checkpoints, with ``training_args`` and ``ada_aug_p``.
    MMGeneration/mmagic ``.pth`` checkpoints give G_ema, G and D from their state_dict, with
    ``colour_order`` (their generators output BGR; we swap to RGB) and ``mmgen_meta``.
    TF pickles give G, D and G_ema (from their (G, D, Gs)); StyleGAN (v1) ones give StyleGAN1Generator /
    StyleGAN1Discriminator, with the StyleGAN2 generator's calling convention.
    Networks come back on the CPU, in eval mode, with requires_grad off. Official pickles are read with a
    restricted unpickler: nothing stored in a file is executed (TF pickles' build_module_src included),
    no TensorFlow is needed, and anything off its allow-list raises UnsafePickleError. Every problem a
    user can fix raises StyleGANError.
    """
    return load_network_file(source, progress=progress)[0]
