"""torch.save files read without ``torch.load``: zip archives (its default since PyTorch 1.6) and legacy
files (``_use_new_zipfile_serialization=False``, and everything PyTorch < 1.6 wrote). ``read_torch_file``
tells them apart from their first bytes.

A zip archive holds ``<root>/data.pkl``, a pickle that names each tensor storage by a persistent id
``('storage', storage type, key, location, numel)``, and one member ``<root>/data/<key>`` with each
storage's raw bytes (little-endian, stored uncompressed). We read ``data.pkl`` with the restricted
unpickler (only allow-listed globals; nothing in the file is run) and each storage from its member once
its declared size has been checked against the member's bytes and the load's budget.

A legacy file is a row of pickles followed by the storages' bytes; the restricted unpickler reads it
(``restricted_load_torch_legacy``), checking every declared size against the bytes left in the file
before anything of that size exists.

The result is plain data: dicts, lists, numbers, strings, CPU tensors, and ``ObjectRecord`` for an object
of a known inert class (an ``argparse.Namespace`` of training arguments, mmengine's ``HistoryBuffer``).
Layout readers (rosinality, MMGeneration, the metrics' detectors) take it from there.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from stylegan.errors import StyleGANError
from stylegan.formats.unpickler import (DATA_ERRORS, ObjectRecord, is_legacy_torch_save, load_pickle_file,
                                        one_line, restricted_load_torch_legacy, restricted_load_torch_zip)
from stylegan.limits import MAX_MEMBER_BYTES, quote, read_capped

__all__ = ["ObjectRecord", "read_torch_file", "read_torch_zip", "read_torch_legacy", "torch_file_kind",
           "MAX_DATA_PKL_BYTES"]

MAX_DATA_PKL_BYTES = 64 * 2**20  # the pickle part of one checkpoint (real: under 1 MB; tensors are members)
_DAMAGED = "download or copy the file again"


class _Archive:
    """One open torch zip archive: its root folder, its storage members, and bounded reads of them."""

    def __init__(self, path: Path, source: str):
        self.source = source
        self.size = path.stat().st_size
        try:
            self.zip = zipfile.ZipFile(path)
            infos = self.zip.infolist()
        except Exception as e:  # noqa: BLE001 - BadZipFile, OSError, EOFError, ValueError: all mean unreadable
            raise StyleGANError(f"{source} is not a readable ZIP archive ({one_line(e)})", _DAMAGED) from None
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            raise StyleGANError(f"{source} lists a member twice", "re-save the checkpoint with torch.save")
        pickles = [name for name in names if name.endswith("/data.pkl") and name.count("/") == 1]
        if len(pickles) != 1:
            raise StyleGANError(f"{source} is a ZIP archive but not a torch.save checkpoint (it has "
                                f"{'no' if not pickles else len(pickles)} <folder>/data.pkl)",
                                "pass a network file (.pt, .pkl or .safetensors), not a dataset or other ZIP")
        self.root = pickles[0][: -len("data.pkl")]
        self.infos = {info.filename: info for info in infos}

    def close(self) -> None:
        self.zip.close()

    def _stored(self, name: str, what: str) -> zipfile.ZipInfo:
        """The member's entry, refused unless it is stored uncompressed and lies inside the file."""
        info = self.infos[name]
        # torch.save never compresses: refusing compression rules out zip bombs altogether.
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            raise StyleGANError(f"{self.source}: {what} is compressed, which torch.save never does",
                                "re-save the checkpoint with torch.save")
        if info.header_offset + info.file_size > self.size:
            raise StyleGANError(f"{self.source}: {what} declares {info.file_size} bytes past the end of the file",
                                _DAMAGED)
        return info

    def _read(self, info: zipfile.ZipInfo, nbytes: int, what: str) -> bytes:
        try:
            with self.zip.open(info) as stream:
                data = read_capped(stream, nbytes, lambda: ValueError("longer than its entry says"))
        except Exception as e:  # noqa: BLE001 - BadZipFile (CRC), EOFError, OSError, ...: a damaged member
            raise StyleGANError(f"{self.source}: {what} is damaged ({one_line(e)})", _DAMAGED) from None
        if len(data) != nbytes:
            raise StyleGANError(f"{self.source}: {what} holds {len(data)} bytes where its entry says {nbytes}",
                                _DAMAGED)
        return data

    def pickle_bytes(self) -> bytes:
        name = self.root + "data.pkl"
        info = self._stored(name, quote(name))
        if info.file_size > MAX_DATA_PKL_BYTES:
            raise StyleGANError(f"{self.source}: {quote(name)} is {info.file_size} bytes, over the "
                                f"{MAX_DATA_PKL_BYTES}-byte limit (MAX_DATA_PKL_BYTES)", _DAMAGED)
        return self._read(info, info.file_size, quote(name))

    def storage_bytes(self, key: str, nbytes: int) -> bytes:
        """The first ``nbytes`` of storage ``key``, after checking that its member holds at least that many."""
        name = f"{self.root}data/{key}"
        if "/" in key or name not in self.infos:
            raise StyleGANError(f"{self.source} refers to storage {quote(key)}, which it does not hold", _DAMAGED)
        info = self._stored(name, f"storage {quote(key)}")
        if nbytes > info.file_size or info.file_size > MAX_MEMBER_BYTES:
            raise StyleGANError(f"{self.source}: storage {quote(key)} declares {nbytes} bytes, its member holds "
                                f"{info.file_size} (limit {MAX_MEMBER_BYTES}, MAX_MEMBER_BYTES)", _DAMAGED)
        return self._read(info, info.file_size, f"storage {quote(key)}")[:nbytes]

    def check_byte_order(self) -> None:
        name = self.root + "byteorder"
        if name in self.infos:  # written since PyTorch 2.1; older archives are little-endian
            order = self._read(self._stored(name, "byteorder"), min(self.infos[name].file_size, 16), "byteorder")
            if order != b"little":
                raise StyleGANError(f"{self.source} was saved on a big-endian machine ({quote(order)})",
                                    "re-save the checkpoint on a little-endian machine")


def read_torch_zip(path: Path, source: str) -> Any:
    """The object ``torch.save`` stored in ``path``, as plain data (tensors on the CPU).

    ``source`` names the file in messages. Raises StyleGANError for anything damaged or not a torch zip
    archive, and UnsafePickleError (a StyleGANError) for a global off the allow-list; nothing in the file
    is executed.
    """
    archive = _Archive(path, source)
    try:
        archive.check_byte_order()
        data = archive.pickle_bytes()
        try:
            return restricted_load_torch_zip(io.BytesIO(data), source, archive.size, archive.storage_bytes)
        except StyleGANError:
            raise
        except DATA_ERRORS as e:
            raise StyleGANError(f"cannot read {source}: its data.pkl is truncated or corrupt ({one_line(e)})",
                                _DAMAGED) from None
    finally:
        archive.close()


def read_torch_legacy(path: Path, source: str) -> Any:
    """What a legacy (non-zip) ``torch.save`` stored in ``path``, as plain data; errors as ``read_torch_zip``."""
    try:
        return load_pickle_file(path, source, restricted_load_torch_legacy, what="the legacy torch.save file")
    except OSError as e:
        raise StyleGANError(f"cannot read {source}: {e.strerror or e}", "check the file's permissions") from None


def _head(path: Path, source: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(32)
    except OSError as e:
        raise StyleGANError(f"cannot read {source}: {e.strerror or e}", "check the file's permissions") from None


def torch_file_kind(path: Path, source: str | None = None) -> str | None:
    """'zip' or 'legacy' for a torch.save file of that format, from its first bytes; None for anything else."""
    head = _head(path, source or str(path))
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    return "legacy" if is_legacy_torch_save(head) else None


def read_torch_file(path: Path, source: str) -> Any:
    """What ``torch.save`` stored in ``path`` (either format), as plain data (tensors on the CPU).

    Raises StyleGANError for a file of neither format or one that is damaged, and UnsafePickleError (a
    StyleGANError) for a global off the allow-list; nothing in the file is executed.
    """
    kind = torch_file_kind(path, source)
    if kind == "zip":
        return read_torch_zip(path, source)
    if kind == "legacy":
        return read_torch_legacy(path, source)
    raise StyleGANError(f"{source} is not a torch.save file (it starts with {quote(_head(path, source)[:8])})",
                        _DAMAGED)
