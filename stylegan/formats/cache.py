"""Download cache: each URL is fetched once into ``$STYLEGAN_CACHE_DIR`` (default ``~/.cache/stylegan``)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import requests
from tqdm import tqdm

from stylegan.atomic import atomic_path
from stylegan.errors import StyleGANError

_CHUNK = 1 << 20
_TIMEOUT = (15, 60)  # seconds to connect, and between bytes


def cache_dir() -> Path:
    """Where downloads are kept: ``$STYLEGAN_CACHE_DIR``, else ``~/.cache/stylegan``."""
    return Path(os.environ.get("STYLEGAN_CACHE_DIR") or Path.home() / ".cache" / "stylegan")


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def cached_path(url: str) -> Path:
    """The cache file for ``url``: a hash of the whole URL (so equal basenames differ) plus its basename."""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    basename = re.sub(r"[^A-Za-z0-9._-]", "_", unquote(Path(urlparse(url).path).name))[-80:] or "download"
    return cache_dir() / f"{digest}-{basename}"


def download(url: str, *, progress: bool = True) -> Path:
    """The local path of ``url``'s contents, downloading it first unless it is already cached.

    The file appears in the cache only once complete (temp file + rename), so an interrupted download
    leaves nothing behind and is simply retried next time. Failures raise StyleGANError naming the URL.
    """
    path = cached_path(url)
    if path.is_file():
        return path
    fix = "check the URL and your connection, or download the file yourself and pass its local path"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StyleGANError(f"cannot create the download cache {path.parent}: {e.strerror}",
                            "set STYLEGAN_CACHE_DIR to a writable folder") from None
    try:
        with requests.get(url, stream=True, timeout=_TIMEOUT) as response:
            if response.status_code != 200:
                raise StyleGANError(f"cannot download {url}: the server answered {response.status_code} "
                                    f"{response.reason}", fix)
            total = int(response.headers.get("Content-Length") or 0) or None
            if response.headers.get("Content-Encoding", "identity") != "identity":
                total = None  # the length is of the compressed bytes; we count decoded ones
            with atomic_path(path) as tmp, open(tmp, "wb") as f, \
                    tqdm(total=total, unit="B", unit_scale=True, desc=path.name.split("-", 1)[1],
                         disable=not progress, leave=False) as bar:
                received = 0
                for chunk in response.iter_content(_CHUNK):
                    f.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                if total is not None and received != total:
                    raise StyleGANError(f"cannot download {url}: the connection ended after {received} of "
                                        f"{total} bytes", fix)
    except requests.RequestException as e:
        raise StyleGANError(f"cannot download {url}: {_reason(e)}", fix) from None
    return path


def _reason(error: requests.RequestException) -> str:
    """A short, one-line cause for a failed request."""
    if isinstance(error, requests.Timeout):
        return "the server did not answer in time"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "the connection broke off before the download was complete"
    if isinstance(error, requests.ConnectionError):
        return "cannot connect to the server"
    return " ".join(str(error).split())[:200] or type(error).__name__
