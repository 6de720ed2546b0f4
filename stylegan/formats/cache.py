"""Download cache: each URL is fetched once into ``$STYLEGAN_CACHE_DIR`` (default ``~/.cache/stylegan``).

A download enters the cache only once it is complete, within :data:`~stylegan.limits.MAX_DOWNLOAD_BYTES`,
and accepted by the caller's ``validate`` (a network must load as a network, a detector as TorchScript):
a broken connection, an error page served with status 200 or a truncated body is never cached, so the
next run simply downloads again.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import requests
import urllib3
from tqdm import tqdm

from stylegan.atomic import atomic_path
from stylegan.errors import StyleGANError
from stylegan.limits import MAX_DOWNLOAD_BYTES, shorten

_CHUNK = 1 << 20
_TIMEOUT = (15, 60)  # seconds to connect, and between bytes
_FIX = "check the URL and your connection, or download the file yourself and pass its local path"
_TLS_FIX = ("if your network inspects TLS (a company proxy), point REQUESTS_CA_BUNDLE or SSL_CERT_FILE at its CA "
            "certificate file; otherwise check the system clock and update the CA certificates (pip install -U "
            "certifi)")
_SIZE_FIX = "check the URL, or download the file yourself and pass its local path (local files have no such limit)"
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<?xml")


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


def download(url: str, *, progress: bool = True, validate: Callable[[Path], object] | None = None) -> Path:
    """The local path of ``url``'s contents, downloading it first unless it is already cached.

    The file appears in the cache only once complete (temp file + rename), so an interrupted download
    leaves nothing behind and is simply retried next time. ``validate(path)``, if given, is called on the
    complete download before it is cached and raises StyleGANError if the file is not what was asked for;
    the file is then not cached. A web page (text/html) is never cached, and no download may exceed
    ``MAX_DOWNLOAD_BYTES`` (counted after decoding any Content-Encoding). Failures raise StyleGANError
    naming the URL.
    """
    path = cached_path(url)
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StyleGANError(f"cannot create the download cache {path.parent}: {e.strerror or e}",
                            "set STYLEGAN_CACHE_DIR to a writable folder") from None
    try:
        with atomic_path(path) as tmp:  # renamed into the cache only if everything below succeeds
            with requests.get(url, stream=True, timeout=_TIMEOUT) as response:
                _check_response(url, response)
                _receive(url, response, tmp, progress, path.name.split("-", 1)[1])
            if validate is not None:  # the connection is closed by now: the file is all there is
                _validate(url, tmp, validate)
    except StyleGANError:
        raise
    except requests.RequestException as e:
        reason, fix = _reason(e)
        raise StyleGANError(f"cannot download {url}: {reason}", fix) from None
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, ConnectionError, TimeoutError) as e:
        # requests wraps these; should one slip through, it is still the network, not the disk
        raise StyleGANError(f"cannot download {url}: the connection failed ({shorten(e) or type(e).__name__})",
                            _FIX) from None
    except ssl.SSLError as e:
        raise StyleGANError(f"cannot download {url}: {_tls_reason(str(e))}", _TLS_FIX) from None
    except OSError as e:  # writing the download: a full disk, a read-only cache, a quota
        raise StyleGANError(f"cannot save the download of {url} in {path.parent}: {e.strerror or shorten(e)}; "
                            "nothing was cached",
                            "free some disk space there, or set STYLEGAN_CACHE_DIR to a folder with room") from None
    return path


def _check_response(url: str, response: requests.Response) -> None:
    """Refuse, before writing anything, an error status, a web page, or a declared size over the limit."""
    if response.status_code != 200:
        raise StyleGANError(f"cannot download {url}: the server answered {response.status_code} "
                            f"{shorten(response.reason or '', 60)}".rstrip(), _FIX)
    content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type in ("text/html", "application/xhtml+xml"):
        raise StyleGANError(_web_page(url), _web_page_fix())
    declared = _content_length(response)
    if declared is not None and declared > MAX_DOWNLOAD_BYTES:
        raise StyleGANError(f"cannot download {url}: the server announces {declared} bytes, over the "
                            f"{MAX_DOWNLOAD_BYTES}-byte limit for one download (MAX_DOWNLOAD_BYTES)", _SIZE_FIX)


def _receive(url: str, response: requests.Response, tmp: Path, progress: bool, name: str) -> None:
    """Stream the body into ``tmp``, counting decoded bytes against the limit; refuse a short or empty body."""
    declared = _content_length(response)
    encoded = response.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity")
    total = None if encoded else declared  # a declared length counts compressed bytes; we count decoded ones
    received = 0
    with open(tmp, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=not progress,
                                    leave=False) as bar:
        for chunk in response.iter_content(_CHUNK):
            if received == 0 and chunk.lstrip()[:16].lower().startswith(_HTML_STARTS):
                raise StyleGANError(_web_page(url), _web_page_fix())
            received += len(chunk)
            if received > MAX_DOWNLOAD_BYTES:
                how = " after decoding its Content-Encoding" if encoded else ""
                raise StyleGANError(f"cannot download {url}: it grew past the {MAX_DOWNLOAD_BYTES}-byte limit "
                                    f"for one download (MAX_DOWNLOAD_BYTES){how}; nothing was cached", _SIZE_FIX)
            f.write(chunk)
            bar.update(len(chunk))
    if total is not None and received != total:
        raise StyleGANError(f"cannot download {url}: the connection ended after {received} of {total} bytes",
                            _FIX)
    if received == 0:
        raise StyleGANError(f"cannot download {url}: the server sent an empty file", _FIX)


def _validate(url: str, tmp: Path, validate: Callable[[Path], object]) -> None:
    """Run the caller's check on the complete download; its error is about the download, not the temp file."""
    try:
        validate(tmp)
    except StyleGANError as e:
        what = e.what.replace(str(tmp), "the download").replace(tmp.name, "the download")
        raise StyleGANError(f"cannot use {url}: {what}; nothing was cached",
                            "check that the URL points at the file itself and try again, or download the file "
                            "yourself and pass its local path") from None


def _content_length(response: requests.Response) -> int | None:
    try:
        value = int(response.headers.get("Content-Length") or "")
    except ValueError:
        return None
    return value if value >= 0 else None


def _web_page(url: str) -> str:
    return f"cannot download {url}: the server sent a web page (HTML), not the file; nothing was cached"


def _web_page_fix() -> str:
    return ("check the URL: it must point at the file itself, not at a page about it (a sign-in, quota or error "
            "page looks like this), or download the file yourself and pass its local path")


def _tls_reason(message: str) -> str:
    if "certificate verify failed" in message.lower() or "certificate_verify_failed" in message.lower():
        detail = re.search(r"certificate verify failed:?\s*([^(')\"]*)", message, re.IGNORECASE)
        why = f" ({shorten(detail.group(1).strip(), 80)})" if detail and detail.group(1).strip() else ""
        return f"the server's TLS certificate could not be verified{why}"
    return f"the TLS (https) connection failed ({shorten(message, 100) or 'no details'})"


def _reason(error: requests.RequestException) -> tuple[str, str]:
    """A short, one-line cause for a failed request, and how to fix it."""
    if isinstance(error, requests.exceptions.SSLError):
        return _tls_reason(str(error)), _TLS_FIX
    if isinstance(error, requests.exceptions.ProxyError):
        return ("cannot connect through the proxy",
                "check HTTPS_PROXY / HTTP_PROXY (or unset them), or download the file yourself and pass its path")
    if isinstance(error, requests.Timeout):
        return "the server did not answer in time", _FIX
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "the connection broke off before the download was complete; nothing was cached", _FIX
    if isinstance(error, requests.exceptions.ContentDecodingError):
        return "the server's compressed data is damaged; nothing was cached", _FIX
    if isinstance(error, requests.ConnectionError):
        return "cannot connect to the server", _FIX
    return shorten(error, 200) or type(error).__name__, _FIX


@contextlib.contextmanager
def about_cached_file(source: object, path: Path | None) -> Iterator[None]:
    """Errors raised inside, about the cached copy ``path`` of URL ``source``, name that file and how to renew it.

    For readers of downloaded files: a damaged cached file (or one cached by an older version without
    validation) would otherwise fail every run without saying where it is.
    """
    try:
        yield
    except StyleGANError as e:
        if path is None or not (isinstance(source, str) and is_url(source)):
            raise
        # amend the error in place: its type (UnsafePickleError, ...) is kept for callers that tell them apart
        e.what = f"{e.what}; its cached copy is {path}"
        e.fix = f"delete {path} and it is downloaded again on the next run; {e.fix or _FIX}"
        e.args = (f"{e.what} ({e.fix})",)
        raise
