"""Hostile and malformed rosinality checkpoints through the command line: each is one `error:` line (exit 2)
in a process under 4 GiB of address space, nothing in the file runs, and nothing is written."""

from __future__ import annotations

import argparse
import pathlib
import struct

import pytest
import torch

from stylegan.networks import Generator
from tests.formats.rosinality_writer import small_discriminator_state, small_generator_state
from tests.hostile.harness import run_refused
from tests.hostile.torch_zip_tampering import hostile_data_pkl, with_members


def save(path, value) -> str:
    torch.save(value, path)
    return str(path)


def test_a_checkpoint_in_neither_layout_lists_its_keys_and_the_layouts(tmp_path):
    path = save(tmp_path / "psp.pt", {"state_dict": {"w": torch.zeros(2)}, "opts": {"lr": 0.1}})
    line = run_refused(["info", "--network", path], cwd=tmp_path, expect="keys state_dict, opts")
    assert "convert_weight.py" in line and "train.py" in line


@pytest.mark.parametrize("change, expect", [
    (lambda s: s.pop("to_rgbs.0.bias"), "missing to_rgbs.0.bias"),
    (lambda s: s.update({"convs.0.noise.extra": torch.zeros(1)}), "unexpected convs.0.noise.extra"),
    (lambda s: s.update({"style.2.weight": torch.zeros(24, 7)}), "style.2.weight has shape [24, 7], expected [24, 24]"),
    (lambda s: s.update({"input.input": torch.zeros(3)}), "input.input has shape [3]"),
    (lambda s: s.update({"conv1.activate.bias": [1.0] * 32}), "not a float tensor"),
])
def test_a_state_dict_with_missing_extra_or_misfit_tensors(tmp_path, change, expect):
    state = small_generator_state()
    change(state)
    path = save(tmp_path / "bad.pt", {"g_ema": state, "latent_avg": torch.zeros(24)})
    run_refused(["info", "--network", path], cwd=tmp_path, expect=expect)


def test_a_discriminator_that_does_not_fit(tmp_path):
    d = small_discriminator_state()
    d["final_linear.1.weight"] = torch.zeros(2, 32)
    path = save(tmp_path / "bad.pt", {"g_ema": small_generator_state(), "d": d, "args": argparse.Namespace(a=1)})
    run_refused(["info", "--network", path], cwd=tmp_path, expect="final_linear.1.weight has shape [2, 32]")


def test_a_wrong_latent_avg(tmp_path):
    path = save(tmp_path / "bad.pt", {"g_ema": small_generator_state(), "latent_avg": torch.zeros(3, 5)})
    run_refused(["info", "--network", path], cwd=tmp_path, expect="latent_avg in")


def test_args_holding_an_unexpected_object_is_refused_with_its_class_name(tmp_path):
    args = argparse.Namespace(path=pathlib.PurePosixPath("lmdb"), size=32)
    path = save(tmp_path / "ckpt.pt", {"g_ema": small_generator_state(), "args": args})
    run_refused(["info", "--network", path], cwd=tmp_path, expect="pathlib.PurePosixPath")


@pytest.mark.parametrize("module, name", [("os", "system"), ("subprocess", "call"), ("torch", "load"),
                                          ("builtins", "exec")])
def test_a_data_pkl_reaching_for_code_runs_nothing(tmp_path, module, name):
    marker = tmp_path / "pwned"
    argument = f"touch {marker}" if module in ("os",) else str(marker)
    save(tmp_path / "evil.pt", {"g_ema": small_generator_state()})
    path = with_members(tmp_path / "evil.pt", {"/data.pkl": hostile_data_pkl(module, name, argument)})
    run_refused(["info", "--network", path], cwd=tmp_path, expect=f"'{module}.{name}'")
    assert not marker.exists()


def test_storage_sizes_beyond_the_member_bytes(tmp_path):
    save(tmp_path / "cut.pt", {"g_ema": small_generator_state()})
    path = with_members(tmp_path / "cut.pt", {"/data/0": b"\0" * 8})
    run_refused(["info", "--network", path], cwd=tmp_path, expect="its member holds 8")


def test_a_zip_bomb_member_is_refused_uninflated(tmp_path):
    save(tmp_path / "bomb.pt", {"g_ema": small_generator_state()})
    path = with_members(tmp_path / "bomb.pt", {"/data/0": bytes(256 * 2**20)}, compress={"/data/0"})
    assert pathlib.Path(path).stat().st_size < 4 * 2**20
    run_refused(["info", "--network", path], cwd=tmp_path, expect="compressed, which torch.save never does")


def test_a_huge_declared_data_pkl(tmp_path):
    save(tmp_path / "huge.pt", {"g_ema": small_generator_state()})
    raw = bytearray((tmp_path / "huge.pt").read_bytes())
    entry = raw.index(b"PK\x01\x02")  # the first central-directory entry is data.pkl's
    assert raw[entry + 46: entry + 46 + 20].decode(errors="replace").split("/")[1].startswith("data.pkl")
    raw[entry + 20: entry + 28] = struct.pack("<II", 3 * 2**30, 3 * 2**30)
    (tmp_path / "huge.pt").write_bytes(bytes(raw))
    run_refused(["info", "--network", str(tmp_path / "huge.pt")], cwd=tmp_path, expect="past the end of the file")


def test_convert_to_rosinality_refuses_what_the_layout_cannot_hold_and_writes_nothing(tmp_path):
    import stylegan

    G = Generator(z_dim=8, c_dim=4, w_dim=8, img_resolution=8, img_channels=3, mapping_kwargs=dict(num_layers=1),
                  synthesis_kwargs=dict(channel_base=32768, channel_max=512))
    stylegan.save_network({"G_ema": G}, tmp_path / "cond.safetensors")
    run_refused(["convert", "--source", "cond.safetensors", "--dest", "out/r.pt", "--to", "rosinality"],
                cwd=tmp_path, expect="conditional (c_dim=4)")
    assert not (tmp_path / "out").exists()
    run_refused(["convert", "--source", "cond.safetensors", "--dest", "r.safetensors", "--to", "rosinality"],
                cwd=tmp_path, expect="does not end in .pt or .pth")


def test_a_swagan_checkpoint_says_its_architecture(tmp_path):
    path = save(tmp_path / "swagan.pt", {"g_ema": {"dwt.weight": torch.zeros(1)},
                                         "args": argparse.Namespace(arch="swagan", size=32)})
    run_refused(["info", "--network", path], cwd=tmp_path, expect="--arch swagan")
