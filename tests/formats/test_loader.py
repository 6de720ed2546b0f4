"""load_network: sources, format detection by content, the built-in network, and one-line errors."""

from __future__ import annotations

import io
import json
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import stylegan
from stylegan.errors import StyleGANError, UnsafePickleError
from stylegan.formats import describe_source
from tests.formats.conftest import assert_same_tensors, tiny_generator
from tests.formats.official_writer import write_official_pickle


def error_for(source) -> str:
    with pytest.raises(StyleGANError) as info:
        stylegan.load_network(source)
    assert not isinstance(info.value, UnsafePickleError)
    message = str(info.value)
    assert "\n" not in message and "(" in message  # one line: what went wrong (how to fix it)
    return message


# The built-in network


def test_default_is_a_small_class_conditional_generator():
    net = stylegan.load_network("default")
    G = net["G_ema"]
    assert net["format"] == "built-in"
    assert (G.z_dim, G.c_dim, G.w_dim, G.img_resolution, G.img_channels) == (64, 10, 64, 32, 1)
    assert not G.training and not any(p.requires_grad for p in G.parameters())


def test_default_is_the_same_on_every_call_and_leaves_the_rng_alone():
    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    first = stylegan.load_network("default")["G_ema"]
    assert torch.equal(torch.rand(2), expected)
    torch.manual_seed(99)  # a different global state must not change the built-in weights
    assert_same_tensors(first, stylegan.load_network("default")["G_ema"])
    z, c = torch.randn(2, 64), torch.eye(10)[:2]
    with torch.no_grad():
        img = first(z, c, noise_mode="const")
    assert img.shape == (2, 1, 32, 32) and torch.isfinite(img).all()


# Format detection looks at the content, not the name


def test_formats_are_told_by_content_not_extension(tmp_path, snapshot):
    pkl = write_official_pickle(tmp_path / "really_a_pickle.safetensors", {"G_ema": snapshot["G_ema"]})
    assert stylegan.load_network(pkl)["format"] == "stylegan2-ada-pytorch pickle"
    st = tmp_path / "really_safetensors.pkl"
    stylegan.save_network({"G_ema": snapshot["G_ema"]}, st)
    assert stylegan.load_network(st)["format"] == "stylegan safetensors"
    assert describe_source(st) == "stylegan safetensors"
    assert describe_source(pkl) == "stylegan2-ada-pytorch pickle"
    assert describe_source("default") == "built-in"


def test_paths_may_be_str_or_pathlike(snapshot_pkl):
    assert_same_tensors(stylegan.load_network(str(snapshot_pkl))["G_ema"], stylegan.load_network(snapshot_pkl)["G_ema"])


# Bad inputs: each a StyleGANError with a one-line message naming the problem


def test_missing_file(tmp_path):
    message = error_for(tmp_path / "nope.pkl")
    assert "nope.pkl does not exist" in message and "'default'" in message


def test_directory(tmp_path):
    assert "is a directory" in error_for(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.pkl").write_bytes(b"")
    assert "empty.pkl is empty" in error_for(tmp_path / "empty.pkl")


def test_truncated_pickle(tmp_path, snapshot_pkl):
    data = snapshot_pkl.read_bytes()
    for cut in (len(data) // 3, len(data) - 1):
        path = tmp_path / f"cut{cut}.pkl"
        path.write_bytes(data[:cut])
        assert "truncated or corrupt" in error_for(path)


def test_corrupt_pickle(tmp_path, snapshot_pkl):
    data = bytearray(snapshot_pkl.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(range(64))
    (tmp_path / "bad.pkl").write_bytes(bytes(data))
    with pytest.raises(StyleGANError) as info:  # garbage may also spell a global off the list: still refused
        stylegan.load_network(tmp_path / "bad.pkl")
    assert "\n" not in str(info.value)


def test_truncated_safetensors(tmp_path, snapshot):
    path = tmp_path / "net.safetensors"
    stylegan.save_network({"G_ema": snapshot["G_ema"]}, path)
    data = path.read_bytes()
    for cut in (20, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.safetensors").write_bytes(data[:cut])
        assert "truncated or corrupt" in error_for(tmp_path / "cut.safetensors")


def test_text_file_is_not_a_network_file(tmp_path):
    (tmp_path / "notes.pkl").write_text("these are not the weights you are looking for\n")
    assert "is not a network file" in error_for(tmp_path / "notes.pkl")


def test_a_zip_archive_that_is_no_network_layout_we_know_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "dataset.zip", "w") as z:
        z.writestr("dataset.json", "{}")
    assert "ZIP archive" in error_for(tmp_path / "dataset.zip")
    torch.save({"w": torch.zeros(2)}, tmp_path / "checkpoint.pt")  # torch.save's zip format
    assert "ZIP archive" in error_for(tmp_path / "checkpoint.pt")


def test_legacy_torch_save_checkpoint(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    assert "torch.save checkpoint" in error_for(tmp_path / "old.pt")


def test_pickle_of_something_else(tmp_path):
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3], protocol=4))
    assert "not a network pickle: it holds a list" in error_for(tmp_path / "list.pkl")


def test_file_without_g_ema_says_what_it_holds(tmp_path, snapshot):
    path = write_official_pickle(tmp_path / "gd.pkl", {"G": snapshot["G"], "D": snapshot["D"]})
    assert "has no G_ema (it holds: G, D)" in error_for(path)
    st = tmp_path / "gd.safetensors"
    stylegan.save_network({"G_ema": snapshot["G"], "D": snapshot["D"]}, st)
    # Remove G_ema from the metadata and tensors to make a G/D-only file of ours.
    with safe_open(str(st), framework="pt") as f:
        header = json.loads(f.metadata()["stylegan"])
    header["networks"] = {"D": header["networks"]["D"]}
    tensors = {k: v for k, v in load_file(str(st)).items() if k.startswith("D.")}
    save_file(tensors, str(st), metadata={"stylegan": json.dumps(header)})
    assert "has no G_ema (it holds: D)" in error_for(st)


def test_safetensors_without_our_metadata(tmp_path):
    save_file({"weight": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    assert "not a stylegan network file" in error_for(tmp_path / "other.safetensors")


def test_an_incomplete_tensorflow_pickle_is_named_as_such(tmp_path, monkeypatch):
    # A TF network pickle: a tuple (G, D, Gs) of dnnlib.tflib.network.Network states.
    network_class = type("Network", (), {"__module__": "dnnlib.tflib.network"})
    for name in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules["dnnlib.tflib.network"].Network = network_class
    nets = []
    for name in ("G", "D", "Gs"):
        net = network_class()
        net.__dict__.update(version=4, name=name, static_kwargs={}, components={}, build_module_src="raise",
                            build_func_name="G_main", variables=[("lod", np.float32(0))])
        nets.append(net)
    path = tmp_path / "stylegan2-ffhq-config-f.pkl"
    path.write_bytes(pickle.dumps(tuple(nets), protocol=4))
    monkeypatch.undo()
    message = error_for(path)  # read as a TF pickle, refused for what it holds (no synthesis network)
    assert "is an unsupported TensorFlow network: G_main" in message


def test_a_snapshot_whose_g_ema_is_none_has_no_g_ema(tmp_path, snapshot):
    path = write_official_pickle(tmp_path / "none.pkl", {"G": snapshot["G"], "G_ema": None})
    assert "has no G_ema (it holds: G)" in error_for(path)


def test_unsupported_source_type():
    assert "cannot load a network from an object of type int" in error_for(42)


def test_a_stylegan_error_names_the_fix(tmp_path):
    with pytest.raises(StyleGANError) as info:
        stylegan.load_network(tmp_path / "nope.pkl")
    assert info.value.fix and info.value.what
    assert str(info.value) == f"{info.value.what} ({info.value.fix})"


def test_bytes_io_is_not_a_source():
    assert "cannot load a network from an object of type BytesIO" in error_for(io.BytesIO(b"\x80\x04."))


def test_public_api():
    assert stylegan.__version__ == "0.1.0"
    assert {"load_network", "save_network", "StyleGANError"} <= set(stylegan.__all__)
    tiny_generator(1)  # importing the test helpers must not need anything beyond the package
