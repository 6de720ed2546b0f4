"""Members of archives a user hands us (dataset ZIPs, ``.npz`` files, tarballs), read within bounds.

A compressed member can inflate a thousandfold, and a header can declare any size. So every reader here
checks the declared size against a limit (and, where it can, against the bytes in the file) before it
allocates, reads with a cap, and turns every way a damaged archive fails (zlib, BadZipFile, EOF, an
unsupported compression method, an encrypted member) into one line. Nothing is ever unpickled.
"""

from __future__ import annotations

import ast
import os
import struct
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable, Optional

import numpy as np

from stylegan.errors import StyleGANError
from stylegan.limits import MAX_MEMBER_BYTES, quote, read_capped


class DamagedMember(ValueError):
    """A member could not be read within the limits; the message is a short reason for an error line."""


def open_zip(path: str | os.PathLike, what: str, fix: str) -> zipfile.ZipFile:
    """Open a ZIP for reading, refusing a damaged one or one that repeats a member name (one line each).

    ``what`` names the archive in messages (``dataset data.zip``).
    """
    try:
        archive = zipfile.ZipFile(path)
    except Exception as e:  # noqa: BLE001 - BadZipFile, OSError, EOFError, ValueError: all mean unreadable
        raise StyleGANError(f"{what} is not a readable ZIP ({_reason(e)})", fix) from None
    try:
        check_unique_names(archive.namelist(), what)
    except StyleGANError:
        archive.close()
        raise
    return archive


def check_unique_names(names: list[str], what: str) -> None:
    """Refuse an archive listing one member name twice: which copy a reader gets would depend on the reader."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise StyleGANError(f"{what} holds two members named {quote(name)}",
                                "re-create the archive with each file once")
        seen.add(name)


def read_member(archive: zipfile.ZipFile, name: str, limit: int = MAX_MEMBER_BYTES) -> bytes:
    """The bytes of one ZIP member, at most ``limit`` of them; DamagedMember (a short reason) otherwise.

    The declared size is checked before anything is inflated, and the inflating stream is cut off at the
    limit whatever the header says.
    """
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise DamagedMember(f"no member {quote(name)}") from None
    if info.file_size > limit:
        raise DamagedMember(f"declares {info.file_size} bytes, over the {limit}-byte limit for one member")
    try:
        with archive.open(info) as stream:
            return read_capped(stream, limit, lambda: DamagedMember(
                f"inflates past the {limit}-byte limit for one member"))
    except DamagedMember:
        raise
    except Exception as e:  # noqa: BLE001 - zlib.error, BadZipFile (CRC), EOFError, NotImplementedError, ...
        raise DamagedMember(f"damaged member ({_reason(e)})") from None


def read_member_or_fail(archive: zipfile.ZipFile, name: str, what: str, fix: str,
                        limit: int = MAX_MEMBER_BYTES) -> bytes:
    """:func:`read_member` with any failure as one StyleGANError line naming ``what``."""
    try:
        return read_member(archive, name, limit)
    except DamagedMember as e:
        raise StyleGANError(f"cannot read {what}: {e}", fix) from None


def read_exactly(stream: BinaryIO, count: int) -> Optional[bytearray]:
    """Exactly ``count`` bytes from ``stream`` into one preallocated buffer (no second copy), or None when the
    stream ends first. The caller has bounded ``count``."""
    buf = bytearray(count)
    view, filled = memoryview(buf), 0
    while filled < count:
        got = stream.readinto(view[filled: filled + 2**24])
        if not got:
            return None
        filled += got
    return buf


def _reason(e: BaseException, limit: int = 100) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------------------
# .npz archives (a ZIP of .npy members), read without numpy's pickle-capable loader

_NPY_MAGIC = b"\x93NUMPY"
MAX_NPY_HEADER = 10_000  # numpy's own bound on the header of an .npy file


class NpzArchive:
    """The arrays of an ``.npz``, each read only after its header (dtype, shape) passed the caller's checks.

    ``fail(reason)`` makes the caller's one-line StyleGANError from a short reason (``not an .npz archive``,
    ``'w' has dtype '<U3', expected floats``). Use as a context manager.
    """

    def __init__(self, path: str | os.PathLike, fail: Callable[[str], StyleGANError]):
        self.path, self.fail = Path(path), fail
        try:
            with open(self.path, "rb") as f:
                head = f.read(len(_NPY_MAGIC))
        except OSError as e:
            raise fail(e.strerror or _reason(e)) from None
        if head == _NPY_MAGIC:
            raise fail("a single array (.npy), not an .npz archive")
        if not zipfile.is_zipfile(self.path):
            raise fail("not an .npz archive")
        try:
            self.zip = zipfile.ZipFile(self.path)
        except Exception as e:  # noqa: BLE001 - BadZipFile, OSError, EOFError, ValueError: all mean unreadable
            raise fail(f"not a readable ZIP ({_reason(e)})") from None
        names = self.zip.namelist()
        try:
            check_unique_names(names, "the archive")
        except StyleGANError as e:
            self.zip.close()
            raise fail(e.what) from None
        self.keys = [n[:-4] for n in names if n.endswith(".npy")]

    def __enter__(self) -> "NpzArchive":
        return self

    def __exit__(self, *exc) -> None:
        self.zip.close()

    def __contains__(self, key: str) -> bool:
        return key in self.keys

    def _fail(self, key: str, reason: str) -> StyleGANError:
        return self.fail(f"{quote(key, 40)} {reason}")

    def array(self, key: str, kinds: str, check_shape: Optional[Callable[[tuple], Optional[str]]] = None,
              max_bytes: int = MAX_MEMBER_BYTES, bound_stored: bool = False) -> np.ndarray:
        """Array ``key``. Its dtype must be a plain (no fields, no subarray) number of one of ``kinds``
        (numpy kind letters: ``f`` float, ``i``/``u`` integers, ``U`` text); ``check_shape(shape)`` returns
        a reason to refuse or None. The size must fit ``max_bytes`` when the member is compressed (or
        ``bound_stored``); a stored (uncompressed) member otherwise only has to be present in full, which the
        file's own size shows.
        """
        if key not in self.keys:
            raise self.fail(f"it has no array named {quote(key, 40)}")
        info = self.zip.getinfo(key + ".npy")
        try:
            with self.zip.open(info) as stream:
                dtype, shape, fortran, header_len = self._header(key, stream)
                if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in kinds or \
                        (dtype.kind in "fiu" and dtype.itemsize > 8):
                    raise self._fail(key, f"has dtype {quote(str(dtype))}, expected {_kind_names(kinds)}")
                reason = check_shape(shape) if check_shape is not None else None
                if reason:
                    raise self._fail(key, reason)
                nbytes = dtype.itemsize
                for d in shape:
                    nbytes *= d  # a Python int: cannot overflow
                if (bound_stored or info.compress_type != zipfile.ZIP_STORED) and nbytes > max_bytes:
                    packed = "" if info.compress_type == zipfile.ZIP_STORED else " compressed"
                    raise self._fail(key, f"holds {nbytes} bytes{packed}, over the {max_bytes}-byte limit")
                if info.file_size != header_len + nbytes:
                    raise self._fail(key, f"declares shape {list(shape)} ({nbytes} bytes) but its member holds "
                                          f"{info.file_size - header_len} bytes of data")
                if info.compress_type == zipfile.ZIP_STORED and info.header_offset + info.compress_size > \
                        self.path.stat().st_size:
                    raise self._fail(key, "is cut short (the file ends inside it)")
                body = read_exactly(stream, nbytes)
                if body is None or stream.read(1):
                    raise self._fail(key, "does not hold the bytes its header declares")
        except StyleGANError:
            raise
        except Exception as e:  # noqa: BLE001 - zlib.error, BadZipFile (CRC), EOFError, ...: a damaged member
            raise self._fail(key, f"is damaged ({_reason(e)})") from None
        arr = np.frombuffer(body, dtype=dtype)
        arr = arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
        return arr if dtype.isnative else arr.astype(dtype.newbyteorder("="))  # torch takes native order only

    def _header(self, key: str, stream: BinaryIO) -> tuple[np.dtype, tuple, bool, int]:
        return read_npy_header(stream, lambda reason: self._fail(key, reason))


def read_npy_header(stream: BinaryIO, fail: Callable[[str], StyleGANError]) -> tuple[np.dtype, tuple, bool, int]:
    """(dtype, shape, fortran_order, header length) from the start of an .npy stream, parsed as a literal
    (never unpickled); ``fail(reason)`` makes the caller's error (``is cut short``, ``holds Python objects…``).
    """
    magic = stream.read(8)
    if len(magic) != 8 or magic[:6] != _NPY_MAGIC or magic[6] not in (1, 2, 3):
        raise fail("is not an .npy array")
    size_format = "<H" if magic[6] == 1 else "<I"
    raw = stream.read(struct.calcsize(size_format))
    if len(raw) != struct.calcsize(size_format):
        raise fail("is cut short")
    (length,) = struct.unpack(size_format, raw)
    if length > MAX_NPY_HEADER:
        raise fail(f"has a header of {length} bytes, over the {MAX_NPY_HEADER}-byte limit")
    text = stream.read(length)
    if len(text) != length:
        raise fail("is cut short")
    try:
        header = ast.literal_eval(text.decode("utf-8" if magic[6] == 3 else "latin1"))
        descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
        if isinstance(descr, list):
            raise _Structured()
        if not (isinstance(descr, str) and isinstance(fortran, bool) and isinstance(shape, tuple)
                and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            raise ValueError("unexpected header fields")
        dtype = np.dtype(descr)  # a plain type string only: no fields, no objects (checked by the caller)
    except _Structured:
        raise fail("has a structured dtype (named fields)") from None
    except Exception as e:  # noqa: BLE001 - SyntaxError, ValueError, TypeError, KeyError, RecursionError
        raise fail(f"has an unreadable header ({_reason(e, 60)})") from None
    if dtype.hasobject:
        raise fail("holds Python objects, which are never loaded")
    return dtype, shape, fortran, 8 + len(raw) + length


class _Structured(Exception):
    pass


def _kind_names(kinds: str) -> str:
    names = {"f": "floats", "i": "integers", "u": "unsigned integers", "U": "text"}
    return " or ".join(names[k] for k in kinds)
