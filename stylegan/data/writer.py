"""Writing a dataset in the official layout, all or nothing.

A ZIP is written to a temporary file beside the destination and renamed over it at the end; a folder is
filled under a temporary name and renamed into place. If anything fails (or Ctrl-C), the temporary
file or folder is removed, so an aborted run leaves neither a half dataset nor a damaged old one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Optional

from stylegan.atomic import current_umask
from stylegan.data.labels import LABELS_FILE
from stylegan.errors import StyleGANError

IMAGES_PER_FOLDER = 1000


def archive_name(index: int) -> str:
    """The official name of image ``index``: ``00000/img00000000.png`` (1000 images per folder)."""
    digits = f"{index:08d}"
    return f"{digits[:5]}/img{digits}.png"


class DatasetWriter:
    """Collects files for a ZIP (``dest`` ending in .zip, stored uncompressed) or a folder (anything else).

    Use as a context manager: leaving the block by an exception discards everything written;
    :meth:`commit` publishes the result.
    """

    def __init__(self, dest: str | os.PathLike, overwrite: bool = False):
        self.dest = Path(dest)
        if os.fspath(dest) == "":
            raise StyleGANError("--dest is empty", "give an output .zip file or folder")
        self.is_zip = self.dest.suffix.lower() == ".zip"
        self._tmp: Optional[Path] = None
        self._zip: Optional[zipfile.ZipFile] = None
        self._created_dirs: list[Path] = []
        self._check_dest(overwrite)
        self._open()

    def _check_dest(self, overwrite: bool) -> None:
        d = self.dest
        if self.is_zip:
            if d.is_dir():
                raise StyleGANError(f"--dest {d} is a folder", "give a .zip file name, or a folder name without .zip")
            if d.exists() and not overwrite:
                raise StyleGANError(f"--dest {d} already exists", "choose a new name, or pass --overwrite to replace it")
        elif d.exists():
            if not d.is_dir():
                raise StyleGANError(f"--dest {d} is an existing file and not a .zip",
                                    "give a .zip file name or a new or empty folder")
            if any(d.iterdir()):
                raise StyleGANError(f"--dest folder {d} is not empty", "choose a new or empty folder, or a .zip")

    def _open(self) -> None:
        parent = self.dest.parent
        blocker = next((p for p in [parent, *parent.parents] if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise StyleGANError(f"cannot write --dest {self.dest}: {blocker} is a file, not a folder",
                                "choose a writable --dest")
        try:
            self._created_dirs = [p for p in [parent, *parent.parents] if not p.exists()]
            parent.mkdir(parents=True, exist_ok=True)
            if self.is_zip:
                fd, tmp = tempfile.mkstemp(prefix=f".{self.dest.name}.", suffix=".tmp", dir=parent)
                self._tmp = Path(tmp)
                self._zip = zipfile.ZipFile(os.fdopen(fd, "wb"), mode="w", compression=zipfile.ZIP_STORED)
            else:
                self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.", suffix=".tmp", dir=parent))
        except OSError as e:
            self.discard()
            reason = e.strerror or str(e)
            raise StyleGANError(f"cannot write --dest {self.dest}: {reason}", "choose a writable --dest") from None

    def write(self, name: str, data: bytes | str) -> None:
        """Add one file (``name`` with ``/`` separators, relative to the dataset root)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        try:
            if self._zip is not None:
                self._zip.writestr(name, data)
            else:
                target = self._tmp / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        except OSError as e:
            raise StyleGANError(f"cannot write --dest {self.dest}: {e.strerror or e}",
                                "free some disk space or choose another --dest") from None

    def commit(self) -> None:
        """Finish and move the result into place."""
        try:
            if self._zip is not None:
                fileobj = self._zip.fp
                self._zip.close()
                self._zip = None
                if fileobj is not None and not fileobj.closed:
                    fileobj.flush()
                    os.fsync(fileobj.fileno())
                    fileobj.close()
                os.chmod(self._tmp, 0o666 & ~current_umask())  # mkstemp made it private
                os.replace(self._tmp, self.dest)
            else:
                os.chmod(self._tmp, 0o777 & ~current_umask())
                if self.dest.is_dir():
                    self.dest.rmdir()  # checked empty at the start
                os.rename(self._tmp, self.dest)
        except OSError as e:
            raise StyleGANError(f"cannot write --dest {self.dest}: {e.strerror or e}",
                                "choose a writable --dest") from None
        self._tmp = None
        self._created_dirs = []

    def discard(self) -> None:
        """Remove whatever was written (safe to call more than once)."""
        if self._zip is not None:
            fileobj = self._zip.fp
            with contextlib.suppress(Exception):
                self._zip.close()
            with contextlib.suppress(Exception):
                if fileobj is not None:
                    fileobj.close()
            self._zip = None
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                if self._tmp.is_dir():
                    shutil.rmtree(self._tmp)
                else:
                    self._tmp.unlink()
            self._tmp = None
        for d in self._created_dirs:  # deepest first; stop at the first that is not empty
            try:
                d.rmdir()
            except OSError:
                break
        self._created_dirs = []

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or self._tmp is not None:
            self.discard()


__all__ = ["DatasetWriter", "archive_name", "IMAGES_PER_FOLDER", "LABELS_FILE"]
