"""Downloads: once per URL, atomically, from a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import stylegan
from stylegan.errors import StyleGANError
from stylegan.formats import download
from stylegan.formats.cache import cached_path
from tests.formats.conftest import assert_same_tensors, tiny_generator


class Server:
    """Serves ``files`` ({path: bytes}); '/broken/...' promises more bytes than it sends. Counts requests."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
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
