"""Torch zip archives (``torch.save``'s format) read as plain data, without torch.load.

The reference is torch.load itself on files torch.save wrote here: every tensor must come back equal (values,
dtype, shape, strides where they are the data's own), every plain value equal. Then the damaged variants:
each is one StyleGANError and nothing in the file runs.
"""

from __future__ import annotations

import argparse
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from stylegan.errors import StyleGANError, UnsafePickleError
from stylegan.formats.torch_files import ObjectRecord, read_torch_zip


def assert_same(ours, reference, where="top"):
    """Deep equality: tensors by value and dtype, Namespaces as ObjectRecords, containers by content."""
    if isinstance(reference, torch.Tensor):
        assert isinstance(ours, torch.Tensor) and ours.dtype == reference.dtype, where
        assert ours.shape == reference.shape and torch.equal(ours, reference), where
    elif isinstance(reference, argparse.Namespace):
        assert isinstance(ours, ObjectRecord) and ours.class_name == "argparse.Namespace", where
        assert_same(ours.state, vars(reference), where + ".args")
    elif isinstance(reference, dict):
        assert type(ours) is dict and list(ours) == list(reference), where
        for key in reference:
            assert_same(ours[key], reference[key], f"{where}.{key}")
    elif isinstance(reference, (list, tuple)):
        assert type(ours) is type(reference) and len(ours) == len(reference), where
        for i, (a, b) in enumerate(zip(ours, reference)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert type(ours) is type(reference) and ours == reference, where


def checkpoint_like() -> dict:
    """What training scripts save: state dicts (with _metadata), optimizer states, args, plain values."""
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
    opt = torch.optim.Adam(model.parameters(), lr=0.002, betas=(0.0, 0.99))
    model(torch.randn(2, 2, 5, 5)).sum().backward()
    opt.step()
    base = torch.arange(24, dtype=torch.float32)
    return {
        "g": model.state_dict(),
        "g_optim": opt.state_dict(),
        "args": argparse.Namespace(size=256, lr=0.002, path="data/lmdb", wandb=False, betas=[0.0, 0.99], ckpt=None),
        "ada_aug_p": 0.25,
        "dtypes": [torch.ones(3, dtype=d) for d in (torch.float16, torch.bfloat16, torch.float64, torch.int64,
                                                   torch.int32, torch.uint8, torch.bool)],
        "views": (base[4:10], base.view(4, 6).t(), base[::5]),  # views sharing one storage
        "empty": torch.zeros(0, 3),
        "nested": OrderedDict(a=1, b=[2, "three", None, True, 4.5], c={7: b"bytes"}),
    }


def test_everything_torch_load_reads_comes_back_the_same(tmp_path):
    value = checkpoint_like()
    torch.save(value, tmp_path / "ckpt.pt")
    ours = read_torch_zip(tmp_path / "ckpt.pt", "ckpt.pt")
    assert_same(ours, torch.load(tmp_path / "ckpt.pt", weights_only=False))
    assert ours["views"][1].stride() == (1, 6)  # a transposed view keeps its layout


def test_a_bare_tensor_and_a_legacy_serialization_name(tmp_path):
    t = torch.randn(4, 5)
    torch.save(t, tmp_path / "t.pt")
    assert torch.equal(read_torch_zip(tmp_path / "t.pt", "t.pt"), t)


# --------------------------------------------------------------------------------------------------
# Damaged and hostile archives (built by rewriting a real archive's members)


def members(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as z:
        return [(info.filename, z.read(info)) for info in z.infolist()]


def rewrite(path: Path, items: list[tuple[str, bytes]], compress: set[str] = frozenset()) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in items:
            z.writestr(name, data, zipfile.ZIP_DEFLATED if name in compress else zipfile.ZIP_STORED)


def simple_archive(tmp_path: Path) -> tuple[Path, list[tuple[str, bytes]]]:
    torch.save({"w": torch.arange(1000, dtype=torch.float32)}, tmp_path / "a.pt")
    return tmp_path / "a.pt", members(tmp_path / "a.pt")


def test_a_storage_larger_than_its_member_is_refused_before_reading(tmp_path):
    path, items = simple_archive(tmp_path)
    rewrite(path, [(n, d[:400] if n.endswith("data/0") else d) for n, d in items])
    with pytest.raises(StyleGANError, match="declares 4000 bytes, its member holds 400"):
        read_torch_zip(path, "a.pt")


def test_a_missing_storage_member_is_refused(tmp_path):
    path, items = simple_archive(tmp_path)
    rewrite(path, [(n, d) for n, d in items if not n.endswith("data/0")])
    with pytest.raises(StyleGANError, match="refers to storage '0', which it does not hold"):
        read_torch_zip(path, "a.pt")


def test_compressed_members_are_refused_so_no_zip_bomb_is_inflated(tmp_path):
    path, items = simple_archive(tmp_path)
    bomb = [(n, bytes(64 * 2**20) if n.endswith("data/0") else d) for n, d in items]  # 64 MiB of zeros → ~64 kB
    rewrite(path, bomb, compress={n for n, _ in items if n.endswith("data/0")})
    assert path.stat().st_size < 2**20
    with pytest.raises(StyleGANError, match="is compressed, which torch.save never does"):
        read_torch_zip(path, "a.pt")


def test_a_member_declaring_more_bytes_than_the_file_holds_is_refused(tmp_path):
    path, items = simple_archive(tmp_path)
    raw = bytearray(path.read_bytes())
    # Raise the sizes in data/0's central-directory entry (signature PK\1\2, sizes at +20 and +24, name at +46).
    name = next(n for n, _ in items if n.endswith("data/0")).encode()
    entry = raw.index(b"PK\x01\x02")
    while raw[entry + 46: entry + 46 + len(name)] != name:
        entry = raw.index(b"PK\x01\x02", entry + 4)
    raw[entry + 20: entry + 28] = struct.pack("<II", 2**31, 2**31)
    path.write_bytes(bytes(raw))
    with pytest.raises(StyleGANError, match="past the end of the file"):
        read_torch_zip(path, "a.pt")


def test_a_zip_without_data_pkl_is_not_a_checkpoint(tmp_path):
    rewrite(tmp_path / "d.zip", [("00000/img0.png", b"png")])
    with pytest.raises(StyleGANError, match="not a torch.save checkpoint"):
        read_torch_zip(tmp_path / "d.zip", "d.zip")


def reaching_pickle(module: str, name: str, argument: str) -> bytes:
    """``{'w': module.name(argument)}`` as the opcodes a hostile data.pkl holds (GLOBAL, REDUCE)."""
    text = argument.encode()
    return (b"\x80\x02}X\x01\x00\x00\x00w" + f"c{module}\n{name}\n".encode() + b"X" + struct.pack("<I", len(text))
            + text + b"\x85Rs.")


@pytest.mark.parametrize("module, name", [("os", "system"), ("posix", "system"), ("torch", "load")])
def test_a_data_pkl_reaching_for_code_is_refused_and_nothing_runs(tmp_path, module, name):
    marker = tmp_path / "pwned"
    hostile = reaching_pickle(module, name, f"touch {marker}" if name == "system" else str(marker))
    if module == "os":  # the payload works when unpickled without restrictions: the test can fail
        pickle.loads(hostile)
        assert marker.exists()
        marker.unlink()
    path, items = simple_archive(tmp_path)
    rewrite(path, [(n, hostile if n.endswith("data.pkl") else d) for n, d in items])
    with pytest.raises(UnsafePickleError, match=f"'{module}.{name}'"):
        read_torch_zip(path, "a.pt")
    assert not marker.exists()


def test_args_holding_another_object_is_refused_with_its_class_name(tmp_path):
    torch.save({"args": argparse.Namespace(path=Path("data"))}, tmp_path / "a.pt")
    with pytest.raises(UnsafePickleError, match="pathlib"):
        read_torch_zip(tmp_path / "a.pt", "a.pt")


def test_a_namespace_given_a_second_state_is_refused(tmp_path):
    data = pickle.dumps(argparse.Namespace(a=1), protocol=2)  # NEWOBJ, then BUILD {a: 1}
    assert data.endswith(b"b.")
    data = data[:-1] + b"}b."  # a second BUILD (with an empty dict) before STOP
    path, items = simple_archive(tmp_path)
    rewrite(path, [(n, data if n.endswith("data.pkl") else d) for n, d in items])
    with pytest.raises(StyleGANError, match="change an argparse.Namespace"):
        read_torch_zip(path, "a.pt")


def test_a_storage_shared_by_several_tensors_is_read_once(tmp_path):
    t = torch.randn(100)
    torch.save({"a": t, "b": t, "c": t[10:20]}, tmp_path / "s.pt")
    out = read_torch_zip(tmp_path / "s.pt", "s.pt")
    assert torch.equal(out["a"], t) and torch.equal(out["b"], t) and torch.equal(out["c"], t[10:20])
