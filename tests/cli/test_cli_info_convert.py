"""`stylegan info` reports the numbers; `stylegan convert` round-trips through .safetensors."""

from __future__ import annotations

import re

import pytest

import torch

import stylegan


def test_info_on_the_default_network(run, G):
    r = run("info")
    assert r.code == 0, r.err
    assert re.search(r"resolution:\s+32x32", r.out)
    assert re.search(r"channels:\s+1\b", r.out)
    assert re.search(r"z_dim:\s+64\b", r.out) and re.search(r"w_dim:\s+64\b", r.out)
    assert re.search(r"num_ws:\s+8\b", r.out) and re.search(r"c_dim:\s+10\b", r.out)
    assert re.search(rf"G_ema:\s+{sum(p.numel() for p in G.parameters())}\b", r.out)
    assert re.search(r"coarse:\s+0-3", r.out) and re.search(r"middle:\s+4-7", r.out)
    assert re.search(r"fine:\s+none", r.out)
    assert re.search(r"format:\s+\S", r.out)


def test_info_lists_every_network_and_training_metadata(run, uncond_network):
    r = run("info", "--network", uncond_network)
    assert r.code == 0, r.err
    net = stylegan.load_network(str(uncond_network))
    for key in ("G", "D", "G_ema"):
        assert re.search(rf"^\s+{key}:\s+{sum(p.numel() for p in net[key].parameters())}\b", r.out, re.M), key
    assert re.search(r"resolution:\s+16x16", r.out) and re.search(r"c_dim:\s+0\b", r.out)
    assert "training_set_kwargs" in r.out and "tiny.zip" in r.out


def test_convert_round_trips(run, tmp_path, G):
    dest = tmp_path / "sub" / "default.safetensors"
    r = run("convert", "--source", "default", "--dest", dest)
    assert r.code == 0, r.err
    G2 = stylegan.load_network(str(dest))["G_ema"]
    assert G2.init_kwargs == G.init_kwargs
    for (name, a), (name2, b) in zip(G.state_dict().items(), G2.state_dict().items()):
        assert name == name2 and torch.equal(a, b), name
    z, c = torch.randn(2, G.z_dim), torch.eye(G.c_dim)[:2]
    # noise_mode="const": the default ("random") draws fresh noise on every call.
    torch.testing.assert_close(G2(z, c, noise_mode="const"), G(z, c, noise_mode="const"), rtol=0, atol=0)


def test_convert_keeps_every_network(run, tmp_path, uncond_network):
    dest = tmp_path / "copy.safetensors"
    assert run("convert", "--source", uncond_network, "--dest", dest).code == 0
    net = stylegan.load_network(str(dest))
    assert {"G", "D", "G_ema"} <= set(net)
    assert net.get("training_set_kwargs", {}).get("path") == "tiny.zip"


def test_convert_to_an_unwritable_folder_is_a_clean_error(run, tmp_path):
    # /proc exists and is a directory, but no regular file can be created in it (not even by root).
    r = run("convert", "--source", "default", "--dest", "/proc/qa-default.safetensors")
    assert r.code == 2
    assert r.err.startswith("error: cannot write --dest /proc/qa-default.safetensors") and "Traceback" not in r.err
    assert r.err.count("\n") == 1


def test_convert_with_a_bad_source_creates_no_folder(run, tmp_path):
    r = run("convert", "--source", tmp_path / "missing.pkl", "--dest", tmp_path / "new" / "x.safetensors")
    assert r.code == 2 and "does not exist" in r.err
    assert not (tmp_path / "new").exists()


def test_info_summarises_an_augment_pipe_instead_of_dumping_its_tensors(G):
    from stylegan.cli.info import describe_network
    from stylegan.formats.records import AugmentPipeRecord
    pipe = AugmentPipeRecord(init_kwargs={"xflip": 1, "rotate90": 1, "xint": 0, "scale_std": 0.2, "hue": 1.0},
                             tensors={"p": torch.tensor(0.25), "Hz_geom": torch.randn(12)})
    lines = describe_network({"G_ema": G, "augment_pipe": pipe})
    at = lines.index("augment_pipe:")
    assert lines[at + 1:] == ["  p: 0.25", "  enabled: xflip, rotate90, hue"]
    assert not any("tensor(" in line for line in lines)


def test_convert_that_fails_mid_write_keeps_the_older_file(run, tmp_path, monkeypatch):
    import errno
    import os

    dest = tmp_path / "out.safetensors"
    dest.write_bytes(b"an older network")

    def disk_full(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("stylegan.formats.safetensors_io.save_file", disk_full)
    r = run("convert", "--source", "default", "--dest", dest)
    assert r.code == 2 and r.err.count("\n") == 1
    assert r.err.startswith(f"error: cannot write --dest {dest}: {os.strerror(errno.ENOSPC)}")
    assert dest.read_bytes() == b"an older network"
    assert [p.name for p in tmp_path.iterdir()] == ["out.safetensors"]  # no temporary file left


@pytest.mark.parametrize("message", [
    'Error while serializing: I/O error: No space left on device (os error 28) at path "/x/.tmpabc"',
    'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })',
])
def test_convert_on_a_full_disk_reported_by_safetensors_is_one_line(run, tmp_path, monkeypatch, message):
    # safetensors reports I/O failures as its own SafetensorError, not as OSError.
    import errno
    import os

    from safetensors import SafetensorError

    def disk_full(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise SafetensorError(message)

    monkeypatch.setattr("stylegan.formats.safetensors_io.save_file", disk_full)
    dest = tmp_path / "out.safetensors"
    r = run("convert", "--source", "default", "--dest", dest)
    assert r.code == 2 and r.err.count("\n") == 1 and "Traceback" not in r.err
    assert r.err.startswith(f"error: cannot write --dest {dest}: {os.strerror(errno.ENOSPC)} (")
    assert list(tmp_path.iterdir()) == []  # no temporary file, no half-written --dest


def test_convert_reports_an_unparsable_safetensors_write_error(run, tmp_path, monkeypatch):
    from safetensors import SafetensorError

    def fails(tensors, filename, metadata=None):
        raise SafetensorError("something new went wrong")

    monkeypatch.setattr("stylegan.formats.safetensors_io.save_file", fails)
    r = run("convert", "--source", "default", "--dest", tmp_path / "out.safetensors")
    assert r.code == 2 and r.err.count("\n") == 1
    assert "write failed ('something new went wrong')" in r.err
    assert list(tmp_path.iterdir()) == []
