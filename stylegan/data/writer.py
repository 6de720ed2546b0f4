"""Writing a dataset in the official layout, all or nothing.

A ZIP is written through ``stylegan.atomic.atomic_output`` (a temporary file beside the destination,
renamed over it at the end); a folder is filled under a temporary name and renamed into place. If anything fails (or Ctrl-C), the temporary
file or folder is removed, so an aborted run leaves neither a half dataset nor a damaged old one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator, Optional

from stylegan.atomic import atomic_output, current_umask
from stylegan.data.labels import LABELS_FILE
from stylegan.errors import StyleGANError, setting

IMAGES_PER_FOLDER = 1000


def archive_name(index: int) -> str:
    """The official name of image ``index``: ``00000/img00000000.png`` (1000 images per folder)."""
    digits = f"{index:08d}"
    return f"{digits[:5]}/img{digits}.png"


DEST = setting("dest")  # how messages name the output: the Python argument and the dataset command's flag
WRITABLE_FIX = f"choose a writable {DEST}"


class _Discarded(Exception):
    """Handed to the pending atomic output to make it drop its temporary file instead of publishing it."""


@contextlib.contextmanager
def _as_dest_error(dest: Path, fix: str = WRITABLE_FIX) -> Iterator[None]:
    """An OSError in the block → one StyleGANError line ``cannot write dest (--dest) <dest>: <reason>``."""
    try:
        yield
    except OSError as e:
        raise StyleGANError(f"cannot write {DEST} {dest}: {e.strerror or e}", fix) from None


class DatasetWriter:
    """Collects files for a ZIP (``dest`` ending in .zip, stored uncompressed) or a folder (anything else).

    Use as a context manager: leaving the block by an exception discards everything written;
    :meth:`commit` publishes the result. A ZIP goes through ``stylegan.atomic.atomic_output`` (a temporary
    file beside ``dest``, renamed over it on commit); a folder is filled under a temporary name beside it.
    """

    def __init__(self, dest: str | os.PathLike, overwrite: bool = False):
        self.dest = Path(dest)
        if os.fspath(dest) == "":
            raise StyleGANError(f"{DEST} is empty", "give an output .zip file or folder")
        self.is_zip = self.dest.suffix.lower() == ".zip"
        self._pending = contextlib.ExitStack()  # holds the ZIP's atomic output until commit or discard
        self._zip: Optional[zipfile.ZipFile] = None
        self._folder: Optional[Path] = None     # the temporary folder of a folder dataset
        self._created_dirs: list[Path] = []
        self._check_dest(overwrite)
        self._open()

    def _check_dest(self, overwrite: bool) -> None:
        d = self.dest
        if self.is_zip:
            if d.is_dir():
                raise StyleGANError(f"{DEST} {d} is a folder", "give a .zip file name, or a folder name without .zip")
            if d.exists() and not overwrite:
                raise StyleGANError(f"{DEST} {d} already exists",
                                    f"choose a new name, or turn on {setting('overwrite')} to replace it")
        elif d.exists():
            if not d.is_dir():
                raise StyleGANError(f"{DEST} {d} is an existing file and not a .zip",
                                    "give a .zip file name or a new or empty folder")
            if any(d.iterdir()):
                raise StyleGANError(f"{DEST} folder {d} is not empty", "choose a new or empty folder, or a .zip")

    def _open(self) -> None:
        parent = self.dest.parent
        blocker = next((p for p in [parent, *parent.parents] if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise StyleGANError(f"cannot write {DEST} {self.dest}: {blocker} is a file, not a folder", WRITABLE_FIX)
        self._created_dirs = [p for p in [parent, *parent.parents] if not p.exists()]
        try:
            with _as_dest_error(self.dest):
                parent.mkdir(parents=True, exist_ok=True)
            if self.is_zip:
                tmp = self._pending.enter_context(atomic_output(self.dest, DEST, WRITABLE_FIX))
                with _as_dest_error(self.dest):
                    self._zip = zipfile.ZipFile(tmp, mode="w", compression=zipfile.ZIP_STORED)
            else:
                with _as_dest_error(self.dest):
                    self._folder = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.", suffix=".tmp", dir=parent))
        except BaseException:
            self.discard()
            raise

    def write(self, name: str, data: bytes | str) -> None:
        """Add one file (``name`` with ``/`` separators, relative to the dataset root)."""
        payload = data.encode("utf-8") if isinstance(data, str) else data
        with _as_dest_error(self.dest, f"free some disk space or choose another {DEST}"):
            if self._zip is not None:
                self._zip.writestr(name, payload)
            else:
                target = self._folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(payload)

    def commit(self) -> None:
        """Finish and move the result into place."""
        if self._zip is not None:
            archive, self._zip = self._zip, None
            with _as_dest_error(self.dest):
                archive.close()
            self._pending.close()  # atomic_output: usual file mode, fsync, rename over dest
        else:
            with _as_dest_error(self.dest):
                os.chmod(self._folder, 0o777 & ~current_umask())  # mkdtemp made it private
                if self.dest.is_dir():
                    self.dest.rmdir()  # checked empty at the start
                os.rename(self._folder, self.dest)
            self._folder = None
        self._created_dirs = []

    def discard(self) -> None:
        """Remove whatever was written (safe to call more than once)."""
        if self._zip is not None:
            archive, self._zip = self._zip, None
            with contextlib.suppress(Exception):
                archive.close()
        self._pending.__exit__(_Discarded, _Discarded(), None)  # removes the ZIP's temporary file, if any
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        for d in self._created_dirs:  # deepest first; stop at the first that is not empty
            try:
                d.rmdir()
            except OSError:
                break
        self._created_dirs = []

    @property
    def _unfinished(self) -> bool:
        return self._zip is not None or self._folder is not None

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or self._unfinished:
            self.discard()


__all__ = ["DatasetWriter", "archive_name", "IMAGES_PER_FOLDER", "LABELS_FILE"]
