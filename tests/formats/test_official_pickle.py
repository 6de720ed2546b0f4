"""Official PyTorch pickles load as our modules, bit-exactly, without running anything from the file."""

from __future__ import annotations

import io
import pickle
from collections import OrderedDict

import pytest
import torch

import stylegan
from stylegan.errors import StyleGANError
from stylegan.formats import AugmentPipeRecord
from stylegan.formats.unpickler import restricted_load
from stylegan.networks import Discriminator, Generator
from tests.formats.conftest import C_DIM, assert_same_tensors, tiny_discriminator, tiny_generator
from tests.formats.official_writer import write_official_pickle


def inputs(G: Generator, n: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.z_dim, generator=g)
    c = torch.eye(max(G.c_dim, 1))[:n, : G.c_dim]
    return z, c


def test_snapshot_loads_every_entry_bit_exactly(snapshot, snapshot_pkl):
    net = stylegan.load_network(snapshot_pkl)
    assert set(net) == {"G", "D", "G_ema", "augment_pipe", "training_set_kwargs", "format"}
    assert net["format"] == "stylegan2-ada-pytorch pickle"
    assert isinstance(net["G"], Generator) and isinstance(net["G_ema"], Generator)
    assert isinstance(net["D"], Discriminator)
    for key in ("G", "D", "G_ema"):
        assert_same_tensors(net[key], snapshot[key])
        assert net[key].init_kwargs == snapshot[key].init_kwargs
    assert net["training_set_kwargs"] == snapshot["training_set_kwargs"]


def test_loaded_networks_compute_what_the_originals_compute(snapshot, snapshot_pkl):
    net = stylegan.load_network(snapshot_pkl)
    z, c = inputs(snapshot["G_ema"])
    with torch.no_grad():
        img = net["G_ema"](z, c, truncation_psi=0.7, noise_mode="const")
        assert torch.equal(img, snapshot["G_ema"](z, c, truncation_psi=0.7, noise_mode="const"))
        assert torch.equal(net["D"](img, c), snapshot["D"](img, c))


def test_networks_come_back_on_cpu_in_eval_mode_without_grad(snapshot_pkl):
    net = stylegan.load_network(snapshot_pkl)
    for key in ("G", "D", "G_ema"):
        assert not net[key].training
        assert all(p.device.type == "cpu" and not p.requires_grad for p in net[key].parameters())


def test_augment_pipe_comes_back_as_a_record_with_its_state(snapshot, snapshot_pkl):
    record = stylegan.load_network(snapshot_pkl)["augment_pipe"]
    assert isinstance(record, AugmentPipeRecord)
    assert record.class_name == "AugmentPipe"
    assert record.init_kwargs == {"xflip": 1, "rotate90": 1, "xint": 1}
    assert float(record.p) == 0.25
    assert torch.equal(record.state_dict()["Hz_geom"], snapshot["augment_pipe"].Hz_geom)


def test_module_source_in_the_file_is_never_executed(tmp_path, snapshot):
    marker = tmp_path / "module_src_ran"
    src = f"open({str(marker)!r}, 'w').write('executed')\nraise SystemExit('executed')\n"
    path = write_official_pickle(tmp_path / "snap.pkl", snapshot, module_src=src)
    net = stylegan.load_network(path)
    assert isinstance(net["G_ema"], Generator)
    assert not marker.exists()


@pytest.mark.parametrize("options", [
    {"protocol": 2}, {"protocol": 3}, {"protocol": 5},
    {"old_style": True},  # files from older PyTorch lack hook fields that newer versions add
    {"positional": 5},  # constructor arguments given positionally land in _init_args
], ids=["protocol2", "protocol3", "protocol5", "old_module_fields", "positional_init_args"])
def test_variants_of_the_official_layout_load(tmp_path, snapshot, options):
    path = write_official_pickle(tmp_path / "snap.pkl", snapshot, **options)
    net = stylegan.load_network(path)
    for key in ("G", "D", "G_ema"):
        assert_same_tensors(net[key], snapshot[key])
        assert net[key].init_kwargs == snapshot[key].init_kwargs
    assert net["augment_pipe"].init_kwargs == {"xflip": 1, "rotate90": 1, "xint": 1}


def test_a_g_ema_only_pickle_and_a_bare_generator_pickle_load(tmp_path):
    G = tiny_generator(5, c_dim=0)
    for name, content in [("only.pkl", {"G_ema": G}), ("bare.pkl", G)]:
        net = stylegan.load_network(write_official_pickle(tmp_path / name, content))
        assert set(net) == {"G_ema", "format"}
        assert_same_tensors(net["G_ema"], G)


def test_stylegan3_repo_layout_with_flat_synthesis_kwargs_loads(tmp_path):
    # The stylegan3 repo's StyleGAN2 Generator takes synthesis options as flat keyword arguments.
    G = tiny_generator(1)
    nested = dict(G.init_kwargs)
    flat = {k: v for k, v in nested.items() if k != "synthesis_kwargs"} | nested["synthesis_kwargs"]
    G.init_kwargs = flat
    net = stylegan.load_network(write_official_pickle(tmp_path / "sg3-stylegan2.pkl", {"G_ema": G}))
    assert_same_tensors(net["G_ema"], G)
    assert net["G_ema"].init_kwargs == nested


def test_loading_does_not_disturb_the_callers_random_state(snapshot_pkl):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    stylegan.load_network(snapshot_pkl)
    assert torch.equal(torch.rand(3), expected)


def test_a_network_whose_tensors_do_not_match_is_refused(tmp_path):
    G = tiny_generator(1)
    del G.mapping.fc1  # the file now lacks mapping.fc1.* and our rebuilt Generator expects them
    path = write_official_pickle(tmp_path / "odd.pkl", {"G_ema": G})
    with pytest.raises(StyleGANError, match=r"G_ema in .*odd.pkl does not match our Generator: missing mapping\.fc1"):
        stylegan.load_network(path)


def test_a_discriminator_stored_as_g_ema_is_refused(tmp_path):
    path = write_official_pickle(tmp_path / "swapped.pkl", {"G_ema": tiny_discriminator()})
    with pytest.raises(StyleGANError, match="G_ema in .* is a Discriminator, expected a Generator"):
        stylegan.load_network(path)


def test_a_stylegan3_generator_is_refused_by_name(tmp_path):
    G = tiny_generator(1)
    G.synthesis.input = type("SynthesisInput", (torch.nn.Module,), {})()  # what marks alias-free synthesis
    path = write_official_pickle(tmp_path / "sg3.pkl", {"G_ema": G})
    with pytest.raises(StyleGANError, match="StyleGAN3"):
        stylegan.load_network(path)


# What a plain pickle.dump of tensors emits on this PyTorch, read back through the allow-list.

def test_plain_pickled_tensors_read_back_bit_exactly():
    base = torch.randn(4, 6)
    tensors = {
        "float32": torch.randn(2, 3),
        "float16": torch.randn(5).half(),
        "bfloat16": torch.randn(5).bfloat16(),
        "float64": torch.randn(3).double(),
        "int64": torch.arange(7),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(0.5),
        "empty": torch.zeros(0, 3),
        "view_with_offset": base[1],
        "transposed": base.t(),
        "channels_last": torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last),
        "parameter": torch.nn.Parameter(torch.randn(3)),
        "frozen_parameter": torch.nn.Parameter(torch.randn(3), requires_grad=False),
    }
    for protocol in (2, 3, 4, 5):
        data = restricted_load(io.BytesIO(pickle.dumps(tensors, protocol=protocol)), "tensors.pkl")
        for name, t in tensors.items():
            assert data[name].dtype == t.dtype and data[name].shape == t.shape, name
            assert torch.equal(data[name], t.detach()), name
            assert data[name].stride() == t.stride(), name


def test_plain_containers_and_numpy_values_read_back():
    import numpy as np

    value = OrderedDict(a=[1, 2.5, "x", None, True], b=(1, 2), c={1, 2}, d=frozenset({3}), e=np.float64(0.125),
                        f=np.float32(2.0), g=np.int64(7), h=b"raw", i=np.arange(6, dtype=np.float32).reshape(2, 3))
    for protocol in (2, 3, 4):
        data = restricted_load(io.BytesIO(pickle.dumps(value, protocol=protocol)), "data.pkl")
        for key in value:
            if key == "i":
                assert np.array_equal(data[key], value[key]) and data[key].dtype == value[key].dtype
            else:
                assert data[key] == value[key] and type(data[key]) is type(value[key]), key


def test_tensor_globals_of_this_pytorch_are_the_ones_allowed():
    # If PyTorch changes how tensors pickle, this names the new globals to review for the allow-list.
    names = set()

    class Recorder(pickle.Unpickler):  # reads our own trusted bytes, only to list the globals asked for
        def find_class(self, module, name):
            names.add(f"{module}.{name}")
            return super().find_class(module, name)

    tensors = {"t": torch.randn(2), "p": torch.nn.Parameter(torch.randn(2)), "h": torch.randn(2).half()}
    for protocol in (2, 3, 4, 5):
        Recorder(io.BytesIO(pickle.dumps(tensors, protocol=protocol))).load()
    assert names == {"torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
                     "torch.storage._load_from_bytes", "collections.OrderedDict",
                     "_codecs.encode"}  # protocol 2 writes the nested blobs' bytes this way


def test_generator_rebuilt_from_pickle_keeps_class_conditioning(snapshot_pkl):
    G = stylegan.load_network(snapshot_pkl)["G_ema"]
    assert G.c_dim == C_DIM and G.z_dim == 8 and G.img_resolution == 8
