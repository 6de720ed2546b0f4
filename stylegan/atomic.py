"""Atomic file writing: write beside the target, then rename over it, so readers never see half a file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from stylegan.errors import StyleGANError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces ``path`` in one step.

    On any error the temporary file is removed and an existing ``path`` is left untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes 0600 files, and some writers (safetensors) replace the file: give the usual mode now.
        os.chmod(tmp, 0o666 & ~current_umask())
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, what: str, fix: str) -> Iterator[Path]:
    """``atomic_path`` for outputs a user named: an OSError (read-only folder, disk full, a folder in the
    way) becomes one StyleGANError line ``cannot write <what> <path>: <reason>`` with ``fix``.

    Nothing is left behind: the temporary file is gone and an older ``path`` is untouched.
    """
    try:
        with atomic_path(path) as tmp:
            yield tmp
    except OSError as e:
        raise StyleGANError(f"cannot write {what} {path}: {e.strerror or e}", fix) from None


def probe_writable_folder(folder: str | os.PathLike) -> None:
    """Raise OSError unless a file can be created (and is removed again) in ``folder``.

    Creating one is the only reliable test: ``os.access`` and folder modes say yes to root, and to /proc.
    """
    with tempfile.TemporaryFile(dir=folder):
        pass


def current_umask() -> int:
    """The process umask (reading it means setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
