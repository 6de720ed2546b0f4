"""Where results go: snapshot kimg, JSON lines, the early writability check; and the package's import layering."""

from __future__ import annotations

import ast
import errno
import json
from pathlib import Path

import pytest

import stylegan.metrics
from stylegan.errors import StyleGANError
from stylegan.metrics.reports import MetricResult, append_result, ensure_writable_parent, snapshot_kimg


def result(metric="fid50k_full@8", value=1.5):
    return MetricResult(metric, {metric.split("@")[0]: value}, 0.25, 8, 40, 0)


def test_snapshot_kimg_prefers_the_counter_then_the_official_file_name():
    assert snapshot_kimg("network-snapshot-000120.pkl", 4_500) == 4.5
    assert snapshot_kimg(Path("run/network-snapshot-000120.safetensors")) == 120.0
    assert snapshot_kimg("https://example.org/x/network-snapshot-002000.pkl") == 2000.0
    assert snapshot_kimg("ffhq.pkl") is None and snapshot_kimg(None) is None
    assert snapshot_kimg(None, 0) == 0.0  # a counter at zero is still a counter


def test_append_result_adds_whole_lines(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"metric": "old"}')  # an earlier writer left no final newline
    append_result(path, result(value=2.0))
    append_result(path, result("kid50k_full", 3.0))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [d["metric"] for d in lines] == ["old", "fid50k_full@8", "kid50k_full"]
    assert lines[1]["value"] == 2.0 and lines[1]["results"] == {"fid50k_full": 2.0}
    assert path.read_text().endswith("\n")


def test_named_values_carry_the_quick_suffix():
    r = MetricResult("pr50k3_full@8", {"pr50k3_full_precision": 0.5, "pr50k3_full_recall": 0.25}, 0, 8, 40, 0)
    assert r.named_values() == {"pr50k3_full_precision@8": 0.5, "pr50k3_full_recall@8": 0.25}
    assert result("is50k").named_values() == {"is50k": 1.5}


def test_ensure_writable_parent_refuses_what_could_not_be_written_later(tmp_path, monkeypatch):
    ensure_writable_parent(None, "--out")
    ensure_writable_parent(tmp_path / "m.jsonl", "--out")
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind
    with pytest.raises(StyleGANError, match="--out .* is a folder"):
        ensure_writable_parent(tmp_path, "--out")
    with pytest.raises(StyleGANError, match="folder .*missing does not exist or is not writable"):
        ensure_writable_parent(tmp_path / "missing" / "m.jsonl", "--out")
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(StyleGANError, match="--export-stats"):  # ENOTDIR, for root as for anyone
        ensure_writable_parent(a_file / "ref.npz", "--export-stats")

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("tempfile.TemporaryFile", read_only)  # a read-only mount, which root cannot write either
    with pytest.raises(StyleGANError, match="not writable"):
        ensure_writable_parent(tmp_path / "m.jsonl", "--out")


def test_no_module_of_the_package_imports_the_package_itself():
    # The package __init__ imports its modules; a module importing the package back would be a circle.
    for path in Path(stylegan.metrics.__file__).parent.glob("*.py"):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "stylegan.metrics", f"{path.name} imports from the package __init__"
            if isinstance(node, ast.Import):
                assert all(a.name != "stylegan.metrics" for a in node.names), path.name
