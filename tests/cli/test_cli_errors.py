"""Every bad input: exit code 2, one line starting 'error:' on stderr, no traceback, no files left."""

from __future__ import annotations

import errno
import os

import pytest
import torch

import stylegan
from stylegan.cli import main


def assert_clean_error(r, outdir=None, match=None):
    assert r.code == 2, (r.code, r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.err
    assert "Traceback" not in r.err
    assert lines[0].rstrip().endswith(")")  # every message says how to fix it
    if match is not None:
        assert match in lines[0], lines[0]
    if outdir is not None:
        assert not os.path.exists(outdir)


BAD_INPUTS = [
    (["generate", "--seeds", "5-2", "--class", "0"], "descending range '5-2'"),
    (["generate", "--seeds=-1", "--class", "0"], "negative entry '-1'"),
    (["generate", "--seeds", "abc", "--class", "0"], "bad list entry 'abc'"),
    (["generate", "--seeds", "", "--class", "0"], "empty index list"),
    (["generate", "--seeds", str(2**32), "--class", "0"], "too large"),
    (["generate", "--class", "0"], "exactly one of --seeds and --projected-w"),
    (["generate", "--seeds", "1", "--projected-w", "x.npz"], "exactly one of --seeds and --projected-w"),
    (["generate", "--seeds", "1", "--trunc", "abc"], "--trunc"),
    (["generate", "--seeds", "1", "--noise-mode", "loud"], "--noise-mode"),
    (["generate", "--seeds", "1", "--batch", "0"], "--batch"),
    (["generate", "--seeds", "1", "--device", "tpu"], "unknown device 'tpu'"),
    (["generate", "--seeds", "0-4", "--grid-w", "2", "--grid-h", "2", "--class", "0"], "4 cells but there are 5"),
    (["generate", "--seeds", "1", "--bogus"], "--bogus"),
    (["generate", "--projected-w", "missing.npz"], "missing.npz"),
    (["generate", "--projected-w", "p.npz", "--class", "1"], "do not apply to --projected-w"),
    (["generate", "--seeds", "1", "--network", "no/such/file.pkl"], None),
    (["style-mix", "--cols", "1"], "--rows"),
    (["style-mix", "--rows", "1", "--cols", "2", "--styles", "5-1"], "--styles: descending range"),
    (["style-mix", "--rows", "1", "--cols", "2", "--styles", "fine", "--class", "0"], "'fine' is empty"),
    (["style-mix", "--rows", "1", "--cols", "2"], "pick one with class_idx (--class)"),
    (["convert", "--source", "default", "--dest", "model.pkl"], "does not end in .safetensors"),
    (["nosuchcommand"], "nosuchcommand"),
]


@pytest.mark.parametrize("args, match", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input(run, tmp_path, monkeypatch, args, match):
    monkeypatch.chdir(tmp_path)
    r = run(*args, "--outdir", tmp_path / "out") if args[0] in ("generate", "style-mix") else run(*args)
    assert_clean_error(r, tmp_path / "out", match)
    assert sorted(os.listdir(tmp_path)) == []  # nothing written anywhere


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_requested_without_cuda(run, tmp_path):
    assert_clean_error(run("generate", "--seeds", "1", "--device", "cuda:0", "--outdir", tmp_path / "o"),
                       tmp_path / "o", "CUDA is not available")


def test_outdir_under_a_regular_file_fails_before_any_work(run, tmp_path, monkeypatch):
    def must_not_load(source):
        raise AssertionError("the network was loaded before the output directory was checked")

    monkeypatch.setattr(stylegan, "load_network", must_not_load)
    (tmp_path / "file").write_text("x")
    for outdir in (tmp_path / "file", tmp_path / "file" / "sub"):
        r = run("generate", "--seeds", "1", "--outdir", outdir)
        assert_clean_error(r, match="cannot write to output directory")
    assert_clean_error(run("style-mix", "--rows", "1", "--cols", "2", "--outdir", tmp_path / "file" / "x"))
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_read_only_outdir(run, tmp_path, monkeypatch):
    # A read-only mount refuses file creation with EROFS even for root (CI runs as root, and root ignores
    # permission bits), so the lowest call that creates files, os.open, fails that way inside the folder.
    locked = tmp_path / "locked"
    locked.mkdir()
    real_open = os.open

    def read_only_open(path, flags, *args, **kwargs):
        if os.path.abspath(os.fsdecode(path)).startswith(str(locked)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only_open)
    r = run("generate", "--seeds", "1", "--class", "0", "--outdir", locked)
    assert_clean_error(r, match=f"cannot write to output directory {locked}: Read-only file system")
    assert os.listdir(locked) == []


def test_keyboard_interrupt_exits_130_quietly(run, tmp_path, monkeypatch):
    def interrupted(source):
        raise KeyboardInterrupt

    monkeypatch.setattr(stylegan, "load_network", interrupted)
    r = run("generate", "--seeds", "1", "--outdir", tmp_path / "o")
    assert r.code == 130 and "Traceback" not in r.err and r.err.strip() == ""
    assert not (tmp_path / "o").exists()


def test_help_and_no_arguments(run):
    r = run()
    assert r.code == 0 and "generate" in r.out and "style-mix" in r.out
    r = run("generate", "--help")
    assert r.code == 0 and "--projected-w" in r.out and "--grid-w" in r.out
    for command in ("style-mix", "info", "convert"):
        assert run(command, "--help").code == 0


def test_main_reads_sys_argv(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["stylegan", "generate", "--seeds", "x"])
    assert main() == 2
    assert capsys.readouterr().err.startswith("error: --seeds: bad list entry 'x'")


def _bad_network_files(folder, marker):
    """id → (path of a bad network file, text the error must contain)."""
    from tests.formats.official_writer import write_official_pickle
    from tests.formats.test_pickle_safety import raw_os_system

    good = folder / "good.pkl"
    write_official_pickle(good, {"G_ema": stylegan.load_network("default")["G_ema"]})
    data = good.read_bytes()
    files = {
        "not-a-network": (b"just some text\n", "not a network file"),
        "empty": (b"", "is empty"),
        "truncated": (data[: len(data) // 2], "truncated or corrupt"),
        "corrupt": (data[:200] + bytes(b ^ 0x5A for b in data[200:400]) + data[400:], None),
        "os.system": (raw_os_system(marker), "'os.system'"),
        "builtins.eval": (b"\x80\x02cbuiltins\neval\nX" + len(f"open({str(marker)!r}, 'w')").to_bytes(4, "little")
                          + f"open({str(marker)!r}, 'w')".encode() + b"\x85R.", "'builtins.eval'"),
        "no-G_ema": (None, "has no G_ema"),
    }
    paths = {}
    for name, (content, match) in files.items():
        path = folder / f"{name}.pkl"
        if content is None:
            write_official_pickle(path, {"D": None, "training_set_kwargs": {"path": "x.zip"}})
        else:
            path.write_bytes(content)
        paths[name] = (path, match)
    good.unlink()
    return paths


BAD_FILE_IDS = ["not-a-network", "empty", "truncated", "corrupt", "os.system", "builtins.eval", "no-G_ema"]


@pytest.mark.parametrize("kind", BAD_FILE_IDS)
def test_bad_network_files_in_every_command(run, tmp_path, kind):
    nets = tmp_path / "nets"
    nets.mkdir()
    marker = tmp_path / "pwned"
    path, match = _bad_network_files(nets, marker)[kind]
    out = tmp_path / "out"
    commands = [
        ["generate", "--network", path, "--seeds", "1", "--outdir", out],
        ["style-mix", "--network", path, "--rows", "1", "--cols", "2", "--outdir", out],
        ["info", "--network", path],
        ["convert", "--source", path, "--dest", tmp_path / "x.safetensors"],
    ]
    for args in commands:
        assert_clean_error(run(*args), out, match)
        assert not marker.exists()  # the payload never ran
    assert sorted(os.listdir(tmp_path)) == ["nets"]  # no output of any command, not even a partial one
