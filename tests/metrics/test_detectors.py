"""Feature detector files: downloads are validated before they are cached, and bad files get whole-word messages."""

from __future__ import annotations

import pytest

from stylegan.errors import StyleGANError
from stylegan.formats.cache import cached_path
from stylegan.limits import shorten
from stylegan.metrics import detectors
from stylegan.metrics.detectors import DetectorSpec, detector_file, load_detector
from tests.detector_standins import write_detectors
from tests.formats.test_cache import Server, cut_without_length, web_page


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A local server standing in for the CDN: the vgg16 spec points at it, and no detector folder is set."""
    monkeypatch.setenv("STYLEGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("STYLEGAN_DETECTOR_DIR", raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    s = Server()
    spec = DetectorSpec("vgg16", "vgg16.pt", s.url("/metrics/vgg16.pt"))
    monkeypatch.setitem(detectors.DETECTORS, "vgg16", spec)
    yield s
    s.close()


def cached(tmp_path) -> list[str]:
    folder = tmp_path / "cache"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def vgg_bytes(tmp_path) -> bytes:
    return (write_detectors(tmp_path / "standins") / "vgg16.pt").read_bytes()


def test_a_downloaded_detector_is_cached_once_and_loads(server, tmp_path):
    server.files["/metrics/vgg16.pt"] = vgg_bytes(tmp_path)
    path = detector_file("vgg16", progress=False)
    assert path == cached_path(server.url("/metrics/vgg16.pt")) and path.is_file()
    assert load_detector("vgg16", progress=False) is not None
    assert server.requests == ["/metrics/vgg16.pt"]


def test_a_web_page_is_not_cached_as_a_detector(server, tmp_path):
    server.routes["/metrics/vgg16.pt"] = web_page()
    with pytest.raises(StyleGANError) as info:
        detector_file("vgg16", progress=False)
    assert info.value.what.startswith("cannot get feature detector vgg16.pt: cannot download ")
    assert "web page" in info.value.what and "pass its folder as detector_dir (--detector-dir)" in info.value.fix
    assert cached(tmp_path) == []


@pytest.mark.parametrize("body", ["cut", "garbage"])
def test_a_download_that_is_not_torchscript_is_not_cached_and_is_fetched_again(server, tmp_path, body):
    data = vgg_bytes(tmp_path)
    url = server.url("/metrics/vgg16.pt")
    if body == "cut":  # no Content-Length: the connection closes mid-file and nothing tells it apart
        server.routes["/metrics/vgg16.pt"] = cut_without_length(data, len(data) // 2)
    else:
        server.files["/metrics/vgg16.pt"] = b"\x89PNG\r\n\x1a\n not a detector" * 50
    with pytest.raises(StyleGANError) as info:
        detector_file("vgg16", progress=False)
    assert info.value.what.startswith(f"cannot get feature detector vgg16.pt: cannot use {url}: the download is not "
                                      "a TorchScript file (PytorchStreamReader failed reading zip archive")
    assert info.value.what.endswith("); nothing was cached") and ".tmp" not in str(info.value)
    assert cached(tmp_path) == []
    server.routes.clear()
    server.files["/metrics/vgg16.pt"] = data
    assert detector_file("vgg16", progress=False).read_bytes() == data  # the next run downloads again
    assert len(server.requests) == 2


def test_a_damaged_cached_detector_names_the_file_and_how_to_renew_it(server, tmp_path):
    path = cached_path(server.url("/metrics/vgg16.pt"))  # cached by an older version, before validation
    path.parent.mkdir(parents=True)
    path.write_bytes(b"<html>quota exceeded</html>")
    with pytest.raises(StyleGANError) as info:
        load_detector("vgg16", progress=False)
    assert info.value.what == (f"feature detector {path} (downloaded from {server.url('/metrics/vgg16.pt')}) is not "
                               "a readable TorchScript file (PytorchStreamReader failed reading zip archive: failed "
                               "finding central directory)")
    assert info.value.fix.startswith(f"delete {path} and it is downloaded again on the next run, or download ")
    assert server.requests == []


def test_a_corrupt_detector_message_is_cut_at_whole_words(tmp_path):
    folder = tmp_path / "detectors"
    folder.mkdir()
    (folder / "inception-2015-12-05.pt").write_bytes(b"not torchscript")
    with pytest.raises(StyleGANError) as info:
        load_detector("inception", detector_dir=folder)
    path = folder / "inception-2015-12-05.pt"
    assert info.value.what == (f"feature detector {path} is not a readable TorchScript file (PytorchStreamReader "
                               "failed reading zip archive: not a ZIP archive)")
    assert info.value.fix == f"replace it with a fresh copy of {detectors.DETECTORS['inception'].url}"


def test_long_reasons_are_cut_between_words():
    class Long(RuntimeError):
        pass

    reason = detectors._load_failure(Long("word " * 100))
    assert len(reason) <= 120 and reason.endswith("word…")
    assert shorten("a\nb  c") == "a b c" and shorten("x" * 300, 50) == "x" * 49 + "…"
