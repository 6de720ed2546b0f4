"""Hostile and broken downloads through the real command line: `stylegan info --network URL`.

Every server here is a thread on 127.0.0.1 (never the internet). Each bad answer must end in one `error:` line,
exit 2, and an empty download cache: nothing half-written or unvalidated is kept for the next run to trip on.
"""

from __future__ import annotations

import resource

import pytest

from tests.formats.test_cache import (
    announces,
    cache_files,
    chunked_then_drop,
    cut_without_length,
    empty,
    make_tls_server,
    network_bytes,
    web_page,
)
from tests.hostile import harness
from tests.hostile.harness import run_refused, run_stylegan


def refuse_info(tmp_path, url: str, expect: str) -> str:
    line = run_refused(["info", "--network", url], cwd=tmp_path, expect=expect)
    assert url in line
    assert cache_files(tmp_path) == []
    return line


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/octet-stream"])
def test_a_web_page_with_status_200(server, tmp_path, content_type):
    server.routes["/G.pkl"] = web_page(content_type)
    refuse_info(tmp_path, server.url("/G.pkl"), "the server sent a web page (HTML), not the file")


def test_a_length_far_over_the_limit(server, tmp_path):
    server.routes["/G.pkl"] = announces(5 * 2**30)
    refuse_info(tmp_path, server.url("/G.pkl"), "over the 4294967296-byte limit for one download (MAX_DOWNLOAD_BYTES)")


def test_a_chunked_body_that_breaks_off(server, tmp_path):
    server.routes["/G.pkl"] = chunked_then_drop(b"\x80\x04" + b"x" * 10_000)
    refuse_info(tmp_path, server.url("/G.pkl"), "the connection broke off")


def test_a_body_shorter_than_its_length(server, tmp_path):
    refuse_info(tmp_path, server.url("/broken/G.pkl"), "the connection broke off")


def test_an_empty_body(server, tmp_path):
    server.routes["/G.pkl"] = empty
    refuse_info(tmp_path, server.url("/G.pkl"), "the server sent an empty file")


def test_a_missing_file(server, tmp_path):
    refuse_info(tmp_path, server.url("/G.pkl"), "the server answered 404")


def test_a_body_cut_short_without_a_length_is_validated_and_fetched_again(server, tmp_path):
    data = network_bytes(tmp_path)
    server.routes["/G.safetensors"] = cut_without_length(data, len(data) // 2)
    url = server.url("/G.safetensors")
    line = refuse_info(tmp_path, url, "nothing was cached")
    assert line.startswith(f"error: cannot use {url}: ")
    del server.routes["/G.safetensors"]  # the server recovers: the next run downloads it again and works
    server.files["/G.safetensors"] = data
    result = run_stylegan(["info", "--network", url], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert server.requests == ["/G.safetensors"] * 2 and len(cache_files(tmp_path)) == 1


def test_garbage_with_status_200_is_not_cached(server, tmp_path):
    server.files["/G.pkl"] = b"\x00\x01 not a network" * 100
    refuse_info(tmp_path, server.url("/G.pkl"), "nothing was cached")


def test_a_full_disk(server, tmp_path, monkeypatch):
    server.files["/G.pkl"] = bytes(8 * 2**20)

    def limits():  # the harness's address-space cap, and writes past 1 MiB fail (as on a full disk)
        resource.setrlimit(resource.RLIMIT_AS, (harness.ADDRESS_SPACE, harness.ADDRESS_SPACE))
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    monkeypatch.setattr(harness, "_cap_address_space", limits)
    line = refuse_info(tmp_path, server.url("/G.pkl"), "cannot save the download of")
    assert "File too large; nothing was cached" in line and "STYLEGAN_CACHE_DIR" in line


def test_an_untrusted_tls_certificate(server, tmp_path):
    tls, root = make_tls_server(tmp_path)
    try:
        line = refuse_info(tmp_path, f"{root}/G.pkl", "the server's TLS certificate could not be verified")
    finally:
        tls.close()
    assert "REQUESTS_CA_BUNDLE" in line and "cannot connect" not in line


def test_a_bad_file_cached_by_an_older_version_names_its_path(tmp_path):
    from stylegan.formats.cache import cached_path

    url = "https://example.invalid/G.pkl"  # never contacted: it is already in the cache
    path = cached_path(url).relative_to(cached_path(url).parent)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / path).write_bytes(b"<html>quota exceeded</html>")
    line = run_refused(["info", "--network", url], cwd=tmp_path, expect="and it is downloaded again on the next run")
    assert str(tmp_path / "cache" / path) in line
