"""Our .safetensors files: a bit-exact round trip, written atomically, read without any unpickling."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import stylegan
from stylegan.errors import StyleGANError
from stylegan.formats import AugmentPipeRecord, load_network_file
from tests.formats.conftest import assert_same_tensors, tiny_generator


@pytest.fixture(scope="module")
def loaded(snapshot_pkl):
    """An official snapshot as load_network returns it (G, D, G_ema, augment pipe record, kwargs)."""
    return stylegan.load_network(snapshot_pkl)


def test_round_trip_is_bit_exact(loaded, tmp_path):
    path = tmp_path / "net.safetensors"
    stylegan.save_network(loaded, path)
    again = stylegan.load_network(path)
    assert again["format"] == "stylegan safetensors"
    assert set(again) == set(loaded)
    for key in ("G", "D", "G_ema"):
        assert type(again[key]) is type(loaded[key])
        assert again[key].init_kwargs == loaded[key].init_kwargs
        assert_same_tensors(again[key], loaded[key])
    assert again["training_set_kwargs"] == loaded["training_set_kwargs"]
    pipe = again["augment_pipe"]
    assert isinstance(pipe, AugmentPipeRecord) and pipe.init_kwargs == loaded["augment_pipe"].init_kwargs
    assert all(torch.equal(pipe.tensors[k], v) for k, v in loaded["augment_pipe"].tensors.items())


def test_round_trip_gives_the_same_outputs(loaded, tmp_path):
    path = tmp_path / "net.safetensors"
    stylegan.save_network(loaded, path)
    again = stylegan.load_network(path)
    z, c = torch.randn(2, 8), torch.eye(3)[:2]
    with torch.no_grad():
        img = loaded["G_ema"](z, c, truncation_psi=0.5, noise_mode="const")
        assert torch.equal(again["G_ema"](z, c, truncation_psi=0.5, noise_mode="const"), img)
        assert torch.equal(again["D"](img, c), loaded["D"](img, c))


def test_file_layout_is_named_tensors_and_one_json_entry(loaded, tmp_path):
    path = tmp_path / "net.safetensors"
    stylegan.save_network(loaded, path)
    with safe_open(str(path), framework="pt") as f:
        names, metadata = set(f.keys()), f.metadata()
    assert "G_ema.mapping.fc0.weight" in names and "G_ema.mapping.w_avg" in names
    assert "augment_pipe.p" in names
    header = json.loads(metadata["stylegan"])
    assert header["stylegan_format"] == "1"
    assert header["networks"]["G_ema"] == {"kind": "module", "class_name": "Generator",
                                           "init_kwargs": loaded["G_ema"].init_kwargs}
    assert header["data"]["training_set_kwargs"] == loaded["training_set_kwargs"]


def test_training_snapshot_extras_round_trip(tmp_path):
    G = tiny_generator(1)
    extra = {"resume.opt.G.mapping.fc0.weight.exp_avg": torch.randn(8, 8), "resume.pl_mean": torch.zeros(1)}
    training = {"progress": {"kimg": 12.5, "tick": 3}, "options": {"batch": 4}}
    path = tmp_path / "snap.safetensors"
    stylegan.save_network({"G_ema": G}, path, extra_tensors=extra, training=training)
    net, got_extra, got_training = load_network_file(path)
    assert_same_tensors(net["G_ema"], G)
    assert set(got_extra) == set(extra) and all(torch.equal(got_extra[k], v) for k, v in extra.items())
    assert got_training == training
    assert set(stylegan.load_network(path)) == {"G_ema", "format"}


def test_a_network_saved_twice_in_one_file_is_stored_twice(tmp_path):
    G = tiny_generator(1)
    path = tmp_path / "same.safetensors"
    stylegan.save_network({"G": G, "G_ema": G}, path)  # shared memory must not trouble safetensors
    net = stylegan.load_network(path)
    assert_same_tensors(net["G"], net["G_ema"])


def test_a_failed_write_leaves_the_previous_file_and_no_temp_files(tmp_path, monkeypatch):
    path = tmp_path / "net.safetensors"
    first = tiny_generator(1)
    stylegan.save_network({"G_ema": first}, path)
    before = path.read_bytes()

    def crash_mid_write(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr("stylegan.formats.safetensors_io.save_file", crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        stylegan.save_network({"G_ema": tiny_generator(2)}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.safetensors"]
    assert_same_tensors(stylegan.load_network(path)["G_ema"], first)


def test_loading_never_unpickles(loaded, tmp_path, monkeypatch):
    path = tmp_path / "net.safetensors"
    stylegan.save_network(loaded, path)

    def forbidden(*args, **kwargs):
        raise AssertionError("a safetensors load must not unpickle")

    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr("stylegan.formats.loader.official_pickle.read_pickle", forbidden)
    assert set(stylegan.load_network(path)) == set(loaded)


def test_saving_needs_a_g_ema_and_json_data(tmp_path):
    with pytest.raises(StyleGANError, match="without a G_ema"):
        stylegan.save_network({"G": tiny_generator(1)}, tmp_path / "x.safetensors")
    with pytest.raises(StyleGANError, match="not JSON data"):
        stylegan.save_network({"G_ema": tiny_generator(1), "notes": object()}, tmp_path / "x.safetensors")
    assert not list(tmp_path.iterdir())


def test_a_tensor_that_does_not_fit_the_network_is_refused(tmp_path):
    path = tmp_path / "net.safetensors"
    stylegan.save_network({"G_ema": tiny_generator(1)}, path)
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(path))
    tensors["G_ema.mapping.fc0.weight"] = torch.zeros(3, 3)
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(StyleGANError, match=r"mapping\.fc0\.weight has shape \[3, 3\], expected \[8, 16\]"):
        stylegan.load_network(path)
