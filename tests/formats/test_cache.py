"""Downloads: once per URL, atomically, from a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import gzip
import resource
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

import stylegan
from stylegan.errors import StyleGANError
from stylegan.formats import cache, download
from stylegan.formats.cache import about_cached_file, cached_path
from tests.formats.conftest import assert_same_tensors, tiny_generator


class Server:
    """Serves ``files`` ({path: bytes}); '/broken/...' promises more bytes than it sends. Counts requests.

    ``routes`` ({path: function(handler)}) answer a path with a hand-made response (headers, cut bodies).
    """

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                if self.path in server.routes:
                    server.routes[self.path](self)
                    self.close_connection = True
                    return
                if self.path.startswith("/broken/"):
                    self.send_response(200)
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    self.wfile.write(b"x" * 1000)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    s = Server()
    yield s
    s.close()


def cache_files(tmp_path) -> list[str]:
    folder = tmp_path / "cache"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_url_is_downloaded_once(server, tmp_path):
    server.files["/nets/model.bin"] = b"network bytes" * 1000
    url = server.url("/nets/model.bin")
    path = download(url, progress=False)
    assert path.read_bytes() == server.files["/nets/model.bin"]
    assert path.parent == tmp_path / "cache" and path.name.endswith("-model.bin")
    assert download(url, progress=False) == path
    assert server.requests == ["/nets/model.bin"]  # the second call never touched the network


def test_urls_with_the_same_basename_do_not_collide(server):
    server.files["/a/model.bin"], server.files["/b/model.bin"] = b"a", b"b"
    a, b = download(server.url("/a/model.bin"), progress=False), download(server.url("/b/model.bin"), progress=False)
    assert a != b and a.read_bytes() == b"a" and b.read_bytes() == b"b"


def test_a_broken_download_leaves_nothing_in_the_cache(server, tmp_path):
    url = server.url("/broken/model.pkl")
    with pytest.raises(StyleGANError) as info:
        download(url, progress=False)
    message = str(info.value)
    assert url in message and "broke off" in message and "download the file yourself" in message
    assert "\n" not in message
    assert cache_files(tmp_path) == []


def test_http_errors_name_the_url_and_status(server, tmp_path):
    url = server.url("/missing.pkl")
    with pytest.raises(StyleGANError, match=r"cannot download .*/missing.pkl: the server answered 404"):
        download(url, progress=False)
    assert cache_files(tmp_path) == []


def test_an_unreachable_server_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE_DIR", str(tmp_path / "cache"))
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/model.pkl"
    with pytest.raises(StyleGANError, match=f"cannot download {url}: cannot connect to the server"):
        download(url, progress=False)
    assert cache_files(tmp_path) == []


def test_load_network_from_a_url_uses_the_cache(server, tmp_path):
    G = tiny_generator(1)
    local = tmp_path / "net.safetensors"
    stylegan.save_network({"G_ema": G}, local)
    server.files["/net.safetensors"] = local.read_bytes()
    url = server.url("/net.safetensors")
    assert_same_tensors(stylegan.load_network(url)["G_ema"], G)
    assert_same_tensors(stylegan.load_network(url, progress=False)["G_ema"], G)
    assert server.requests == ["/net.safetensors"]
    assert cached_path(url).is_file()


def test_a_fresh_download_is_parsed_once(server, tmp_path, monkeypatch):
    from stylegan.formats import loader

    G = tiny_generator(1)
    local = tmp_path / "net.safetensors"
    stylegan.save_network({"G_ema": G}, local)
    server.files["/net.safetensors"] = local.read_bytes()
    reads = []
    real_load_file = loader._load_file
    monkeypatch.setattr(loader, "_load_file", lambda *a: reads.append(a) or real_load_file(*a))
    assert_same_tensors(stylegan.load_network(server.url("/net.safetensors"))["G_ema"], G)
    assert len(reads) == 1  # the validation's parse is the result
    stylegan.load_network(server.url("/net.safetensors"))
    assert len(reads) == 2  # from the cache: one parse, no download


def test_an_already_cached_url_needs_no_server(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE_DIR", str(tmp_path / "cache"))
    url = "https://example.invalid/some/model.pkl"  # never contacted: the file is already cached
    cached_path(url).parent.mkdir(parents=True)
    cached_path(url).write_bytes(b"cached")
    assert download(url).read_bytes() == b"cached"


def test_cache_dir_defaults_to_home(monkeypatch, tmp_path):
    monkeypatch.delenv("STYLEGAN_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cached_path("http://host/x.pkl").parent == tmp_path / ".cache" / "stylegan"


# ---------------------------------------------------------------------------------------------------------
# Hand-made responses for broken and hostile downloads (also used by tests/hostile/test_downloads.py).


def send_head(handler: BaseHTTPRequestHandler, headers: dict[str, str], status: int = 200) -> None:
    handler.send_response(status)
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.end_headers()


def web_page(content_type: str = "text/html; charset=utf-8"):
    """A sign-in page served with status 200, as a file host sends when a link has expired."""
    body = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please sign in</body></html>\n"

    def route(handler):
        send_head(handler, {"Content-Type": content_type, "Content-Length": str(len(body))})
        handler.wfile.write(body)
    return route


def cut_without_length(body: bytes, keep: int):
    """No Content-Length: the body ends where the connection closes, here after ``keep`` bytes."""
    def route(handler):
        send_head(handler, {"Content-Type": "application/octet-stream"})
        handler.wfile.write(body[:keep])
    return route


def chunked_then_drop(body: bytes):
    """Chunked transfer encoding, and the connection drops before the final chunk."""
    def route(handler):
        send_head(handler, {"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"})
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(body), body))
        handler.wfile.flush()
    return route


def announces(length: int):
    """Headers announcing ``length`` bytes, then nothing."""
    def route(handler):
        send_head(handler, {"Content-Type": "application/octet-stream", "Content-Length": str(length)})
    return route


def gzip_encoded(size: int):
    """``size`` zero bytes sent with Content-Encoding: gzip (a few KB on the wire per MB decoded)."""
    body = gzip.compress(bytes(size), compresslevel=9)

    def route(handler):
        send_head(handler, {"Content-Type": "application/octet-stream", "Content-Encoding": "gzip",
                            "Content-Length": str(len(body))})
        handler.wfile.write(body)
    return route


def empty(handler):
    send_head(handler, {"Content-Type": "application/octet-stream", "Content-Length": "0"})


def network_bytes(tmp_path) -> bytes:
    local = tmp_path / "net-for-serving.safetensors"
    stylegan.save_network({"G_ema": tiny_generator(1)}, local)
    data = local.read_bytes()
    local.unlink()
    return data


def load_as_network(path):
    """The validator the loader passes for --network URLs: the download must load as a network."""
    stylegan.formats.loader.load_network_file(path, progress=False)


# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/octet-stream"])
def test_a_web_page_served_with_200_is_not_cached(server, tmp_path, content_type):
    server.routes["/nets/model.pkl"] = web_page(content_type)
    url = server.url("/nets/model.pkl")
    with pytest.raises(StyleGANError) as info:
        download(url, progress=False)
    assert f"cannot download {url}: the server sent a web page (HTML), not the file" in str(info.value)
    assert "pass its local path" in info.value.fix
    assert cache_files(tmp_path) == []


def test_a_body_cut_short_without_a_length_fails_validation_and_is_fetched_again(server, tmp_path):
    data = network_bytes(tmp_path)
    server.routes["/net.safetensors"] = cut_without_length(data, len(data) // 2)
    url = server.url("/net.safetensors")
    with pytest.raises(StyleGANError) as info:
        download(url, progress=False, validate=load_as_network)
    message = str(info.value)
    assert message.startswith(f"cannot use {url}: ") and "the download" in message and "nothing was cached" in message
    assert ".tmp" not in message and "\n" not in message
    assert cache_files(tmp_path) == []
    del server.routes["/net.safetensors"]  # the server recovers: the next run downloads again
    server.files["/net.safetensors"] = data
    path = download(url, progress=False, validate=load_as_network)
    assert path.read_bytes() == data and server.requests == ["/net.safetensors"] * 2
    assert cache_files(tmp_path) == [path.name]


def test_validate_sees_the_complete_file_before_it_is_cached(server, tmp_path):
    server.files["/d.pt"] = b"payload" * 100
    seen = []

    def validate(path):
        seen.append((path.read_bytes(), cached_path(server.url("/d.pt")).exists()))

    path = download(server.url("/d.pt"), progress=False, validate=validate)
    assert seen == [(server.files["/d.pt"], False)] and path.is_file()


def test_a_chunked_body_that_breaks_off_is_not_cached(server, tmp_path):
    server.routes["/model.pkl"] = chunked_then_drop(b"\x80\x02" + b"x" * 5000)
    url = server.url("/model.pkl")
    with pytest.raises(StyleGANError, match=f"cannot download {url}: the connection broke off"):
        download(url, progress=False)
    assert cache_files(tmp_path) == []


def test_an_empty_body_is_not_cached(server, tmp_path):
    server.routes["/model.pkl"] = empty
    with pytest.raises(StyleGANError, match="the server sent an empty file"):
        download(server.url("/model.pkl"), progress=False)
    assert cache_files(tmp_path) == []


def test_a_length_over_the_limit_is_refused_before_anything_is_written(server, tmp_path):
    server.routes["/huge.pkl"] = announces(cache.MAX_DOWNLOAD_BYTES + 1)
    with pytest.raises(StyleGANError) as info:
        download(server.url("/huge.pkl"), progress=False)
    assert f"announces {cache.MAX_DOWNLOAD_BYTES + 1} bytes, over the {cache.MAX_DOWNLOAD_BYTES}-byte limit" in str(
        info.value) and "MAX_DOWNLOAD_BYTES" in str(info.value)
    assert cache_files(tmp_path) == []


def test_the_limit_fits_the_largest_official_networks():
    assert cache.MAX_DOWNLOAD_BYTES >= 2**32  # StyleGAN-XL/-T pickles reach about 1.2 GB


def test_gzip_encoded_downloads_are_decoded_and_capped(server, tmp_path, monkeypatch):
    server.routes["/small.pkl"] = gzip_encoded(300_000)
    assert download(server.url("/small.pkl"), progress=False).read_bytes() == bytes(300_000)
    monkeypatch.setattr(cache, "MAX_DOWNLOAD_BYTES", 2**20)
    server.routes["/bomb.pkl"] = gzip_encoded(64 * 2**20)  # 64 KB on the wire
    written = []
    real_receive = cache._receive

    def watch(url, response, tmp, progress, name):
        try:
            real_receive(url, response, tmp, progress, name)
        finally:
            written.append(tmp.stat().st_size)

    monkeypatch.setattr(cache, "_receive", watch)
    url = server.url("/bomb.pkl")
    with pytest.raises(StyleGANError) as info:
        download(url, progress=False)
    assert f"cannot download {url}: it grew past the {2**20}-byte limit" in str(info.value)
    assert "after decoding its Content-Encoding" in str(info.value)
    assert written and written[0] <= 2**20  # stopped at the cap, not after inflating it all
    assert cache_files(tmp_path) == [cached_path(server.url("/small.pkl")).name]


def test_a_full_disk_is_one_line_and_leaves_nothing(server, tmp_path):
    server.files["/big.pkl"] = bytes(4 * 2**20)
    url = server.url("/big.pkl")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, hard))  # writes past 1 MiB fail, as on a full disk
    try:
        with pytest.raises(StyleGANError) as info:
            download(url, progress=False)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert str(info.value).startswith(f"cannot save the download of {url} in {tmp_path / 'cache'}: File too large; "
                                      "nothing was cached")
    assert "STYLEGAN_CACHE_DIR" in info.value.fix and "\n" not in str(info.value)
    assert cache_files(tmp_path) == []


def test_a_tls_certificate_failure_is_reported_as_such(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE_DIR", str(tmp_path / "cache"))

    def refuse(url, **kwargs):
        raise requests.exceptions.SSLError(
            "HTTPSConnectionPool(host='example.org', port=443): Max retries exceeded with url: /x.pkl (Caused by "
            "SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
            "unable to get local issuer certificate (_ssl.c:1006)')))")

    monkeypatch.setattr(cache.requests, "get", refuse)
    with pytest.raises(StyleGANError) as info:
        download("https://example.org/x.pkl", progress=False)
    assert info.value.what == ("cannot download https://example.org/x.pkl: the server's TLS certificate could not be "
                               "verified (unable to get local issuer certificate)")
    assert "REQUESTS_CA_BUNDLE" in info.value.fix and "SSL_CERT_FILE" in info.value.fix
    assert "cannot connect" not in str(info.value)
    assert cache_files(tmp_path) == []


def make_tls_server(tmp_path) -> tuple[Server, str]:
    """A Server speaking https with a self-signed certificate nobody trusts; returns it and its URL root."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True, timeout=60)
    s = Server()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    s.httpd.socket = context.wrap_socket(s.httpd.socket, server_side=True)
    return s, f"https://127.0.0.1:{s.httpd.server_port}"


def test_a_real_untrusted_certificate_is_reported_as_a_tls_problem(server, tmp_path):
    tls, root = make_tls_server(tmp_path)
    try:
        tls.files["/x.pkl"] = b"never sent"
        with pytest.raises(StyleGANError) as info:
            download(f"{root}/x.pkl", progress=False)
    finally:
        tls.close()
    assert info.value.what.startswith(f"cannot download {root}/x.pkl: the server's TLS certificate could not be "
                                      "verified (self")
    assert "REQUESTS_CA_BUNDLE" in info.value.fix
    assert cache_files(tmp_path) == []


def test_errors_about_a_cached_file_name_it_and_how_to_renew_it(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE_DIR", str(tmp_path / "cache"))
    url = "https://example.invalid/model.pkl"  # cached by an older version, before downloads were validated
    path = cached_path(url)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"<html>quota exceeded</html>")
    with pytest.raises(StyleGANError) as info, about_cached_file(url, path):
        stylegan.load_network(url)
    assert info.value.what.endswith(f"; its cached copy is {path}")
    assert info.value.fix.startswith(f"delete {path} and it is downloaded again on the next run; ")
    with pytest.raises(StyleGANError) as info, about_cached_file(str(path), path):  # a local file: left as is
        stylegan.load_network(str(path))
    assert "cached copy" not in str(info.value)
