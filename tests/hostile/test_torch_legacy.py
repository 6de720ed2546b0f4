"""Hostile and damaged legacy torch.save files through the command line (`info` reads them as network
checkpoints, `metrics` as detector weights): each is one `error:` line (exit 2) in a process under 4 GiB of
address space, nothing in the file runs, and nothing of a declared size is allocated before the bytes are
known to be there."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
import torch

from stylegan.formats import save_network
from stylegan.networks import Generator
from tests.formats.rosinality_writer import small_generator_state
from tests.formats.test_torch_legacy import legacy_bytes, save_legacy
from tests.hostile.harness import run_refused


def checkpoint() -> dict:
    return {"g_ema": small_generator_state(), "latent_avg": torch.zeros(24)}


def write(tmp_path, data: bytes, name: str = "bad.pt") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def info(path: str) -> list[str]:
    return ["info", "--network", path]


def test_a_declared_element_count_beyond_the_file(tmp_path):
    # The first storage declares a million elements (its count repeats it); the file holds a few hundred.
    path = write(tmp_path, legacy_bytes(checkpoint(), declared={"0": 10**6}))
    run_refused(info(path), cwd=tmp_path, expect="a storage of 1000000 elements where the file holds")


def test_a_huge_declared_element_count_allocates_nothing(tmp_path):
    # 2^60 float32 elements: 4 EiB. Under a 4 GiB address space any allocation of it would fail loudly.
    path = write(tmp_path, legacy_bytes(checkpoint(), declared={"0": 2**60}))
    run_refused(info(path), cwd=tmp_path, expect=f"a storage of {2**60} elements where the file holds")


def test_a_count_that_contradicts_the_declaration(tmp_path):
    path = write(tmp_path, legacy_bytes(checkpoint(), counts={"0": 7}))
    run_refused(info(path), cwd=tmp_path, expect="holds 7 elements where the data declares")


@pytest.mark.parametrize("cut", [100, 5000, 40])
def test_a_truncated_file(tmp_path, cut):
    raw = save_legacy(checkpoint(), tmp_path / "whole.pt").read_bytes()
    path = write(tmp_path, raw[:cut] if cut < 1000 else raw[:-cut])
    run_refused(info(path), cwd=tmp_path, expect="bad.pt")


@pytest.mark.parametrize("keys", [["0"], ["0", "1", "1"], ["0", "1", "zzz"], "0"])
def test_a_key_list_that_does_not_match_the_storages(tmp_path, keys):
    value = {"g_ema": {"a": torch.zeros(3), "b": torch.ones(2)}}  # storages '0' and '1'
    path = write(tmp_path, legacy_bytes(value, keys=keys))
    run_refused(info(path), cwd=tmp_path, expect="storage keys does not match the 2 storages")


@pytest.mark.parametrize("module, name", [("os", "system"), ("posix", "system"), ("subprocess", "call"),
                                          ("torch", "load")])
def test_a_data_pickle_reaching_for_code_runs_nothing(tmp_path, module, name):
    marker = tmp_path / "pwned"
    text = (f"touch {marker}" if name == "system" else str(marker)).encode()
    data = (b"\x80\x02}X\x05\x00\x00\x00g_ema" + f"c{module}\n{name}\n".encode() + b"X" + struct.pack("<I", len(text))
            + text + b"\x85Rs.")
    if module == "os":  # the payload works when unpickled without restrictions: the test can fail
        pickle.loads(data)
        assert marker.exists()
        marker.unlink()
    path = write(tmp_path, legacy_bytes(None, data=data))
    run_refused(info(path), cwd=tmp_path, expect=f"'{module}.{name}'")
    assert not marker.exists()


def test_a_storage_type_off_the_allow_list(tmp_path):
    path = write(tmp_path, legacy_bytes(checkpoint(), storage_type=torch.QInt8Storage))
    run_refused(info(path), cwd=tmp_path, expect="'torch.QInt8Storage'")


def test_a_storage_view_of_pytorch_before_1_0(tmp_path):
    raw = legacy_bytes(checkpoint())
    # The first persistent id ends with its view (None, 'N') and TUPLE ('t'): make it ('0', 0, 2).
    index = raw.index(b"X\x03\x00\x00\x00cpu")
    end = raw.index(b"Nt", index)
    raw = raw[:end] + b"X\x01\x00\x00\x000K\x00K\x02\x87t" + raw[end + 2:]
    run_refused(info(write(tmp_path, raw)), cwd=tmp_path, expect="storage views")


def test_a_big_endian_file(tmp_path):
    raw = legacy_bytes(checkpoint())
    true = raw.index(b"\x88", raw.index(b"little_endian"))  # its value, NEWTRUE, after the key's BINPUT
    raw = raw[:true] + b"\x89" + raw[true + 1:]  # NEWFALSE
    run_refused(info(write(tmp_path, raw)), cwd=tmp_path, expect="big-endian")


def test_a_hostile_legacy_detector_file_is_refused_by_metrics(tmp_path):
    """The detector path reads legacy files too: a huge declared storage in the PyTorch Inception's file."""
    torch.manual_seed(0)
    G = Generator(z_dim=8, w_dim=8, c_dim=0, img_resolution=16, img_channels=3,
                  mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(channel_base=64, channel_max=16))
    save_network({"G_ema": G}, tmp_path / "tiny.safetensors")
    folder = tmp_path / "detectors"
    folder.mkdir()
    (folder / "pt_inception-2015-12-05-6726825d.pth").write_bytes(
        legacy_bytes({"fc.bias": torch.zeros(1008)}, declared={"0": 2**40}))
    np.savez(tmp_path / "ok.npz", mu=np.zeros(2048), sigma=np.eye(2048))
    run_refused(["metrics", "--network", "tiny.safetensors", "--detector-dir", str(folder), "--quiet",
                 "--metrics", "fid50k_full_pt@2", "--ref-stats", "ok.npz"], cwd=tmp_path,
                expect="pt_inception-2015-12-05-6726825d.pth")
