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


# The official state layout, written out from how stylegan2-ada-pytorch builds its networks (observed
# by running it): which layers exist, their parameter/buffer names and shapes. A file loads only if our
# modules have exactly this layout, so it is checked here rule by rule, independently of our code.

def _channels(res: int, base: int, cmax: int) -> int:
    return min(base // res, cmax)


def _filter_shape(taps) -> list[int]:
    taps = list(taps)
    return [len(taps), len(taps)] if len(taps) < 8 else [len(taps)]  # long filters stay separable (1-D)


def _fc(prefix: str, out: int, inp: int) -> dict[str, list[int]]:
    return {prefix + ".weight": [out, inp], prefix + ".bias": [out]}


def official_generator_layout(kw: dict) -> dict[str, list[int]]:
    sk, mk = kw.get("synthesis_kwargs", {}), kw.get("mapping_kwargs", {})
    base, cmax = sk.get("channel_base", 32768), sk.get("channel_max", 512)
    arch, filt = sk.get("architecture", "skip"), _filter_shape(sk.get("resample_filter", [1, 3, 3, 1]))
    w_dim, top, img_c, c_dim = kw["w_dim"], kw["img_resolution"], kw["img_channels"], kw["c_dim"]
    embed, hidden = mk.get("embed_features") or w_dim, mk.get("layer_features") or w_dim
    layout = {"mapping.w_avg": [w_dim]}
    if c_dim:
        layout |= _fc("mapping.embed", embed, c_dim)
    num_layers = mk.get("num_layers", 8)
    widths = [kw["z_dim"] + (embed if c_dim else 0)] + [hidden] * (num_layers - 1) + [w_dim]
    for i in range(num_layers):
        layout |= _fc(f"mapping.fc{i}", widths[i + 1], widths[i])
    res = 4
    while res <= top:
        p, ch = f"synthesis.b{res}.", _channels(res, base, cmax)
        layout[p + "resample_filter"] = filt
        if res == 4:
            layout[p + "const"] = [ch, 4, 4]
            convs = [("conv1", ch, [4, 4])]
        else:
            prev = _channels(res // 2, base, cmax)
            convs = [("conv0", prev, filt), ("conv1", ch, [4, 4])]  # conv1 keeps the default [1,3,3,1] buffer
            if arch == "resnet":
                layout |= {p + "skip.weight": [ch, prev, 1, 1], p + "skip.resample_filter": filt}
        for name, cin, layer_filter in convs:
            q = p + name + "."
            layout |= {q + "weight": [ch, cin, 3, 3], q + "bias": [ch], q + "noise_const": [res, res],
                       q + "noise_strength": [], q + "resample_filter": layer_filter}
            layout |= _fc(q + "affine", cin, w_dim)
        if arch == "skip" or res == top:
            layout |= {p + "torgb.weight": [img_c, ch, 1, 1], p + "torgb.bias": [img_c]}
            layout |= _fc(p + "torgb.affine", ch, w_dim)
        res *= 2
    return layout


def official_discriminator_layout(kw: dict) -> dict[str, list[int]]:
    base, cmax = kw.get("channel_base", 32768), kw.get("channel_max", 512)
    arch = kw.get("architecture", "resnet")
    filt = _filter_shape(kw.get("block_kwargs", {}).get("resample_filter", [1, 3, 3, 1]))
    top, img_c, c_dim = kw["img_resolution"], kw["img_channels"], kw["c_dim"]
    layout: dict[str, list[int]] = {}
    res = top
    while res >= 8:
        p, tmp, nxt = f"b{res}.", _channels(res, base, cmax), _channels(res // 2, base, cmax)
        layout[p + "resample_filter"] = filt
        if res == top or arch == "skip":  # fromrgb and conv0 never resample: default filter buffers
            layout |= {p + "fromrgb.weight": [tmp, img_c, 1, 1], p + "fromrgb.bias": [tmp],
                       p + "fromrgb.resample_filter": [4, 4]}
        layout |= {p + "conv0.weight": [tmp, tmp, 3, 3], p + "conv0.bias": [tmp], p + "conv0.resample_filter": [4, 4],
                   p + "conv1.weight": [nxt, tmp, 3, 3], p + "conv1.bias": [nxt], p + "conv1.resample_filter": filt}
        if arch == "resnet":
            layout |= {p + "skip.weight": [nxt, tmp, 1, 1], p + "skip.resample_filter": filt}
        res //= 2
    c4 = _channels(4, base, cmax)
    cmap = (kw.get("cmap_dim") or c4) if c_dim else 0
    if c_dim:  # the label mapping: no z, no w_avg, 8 layers unless told
        layout |= _fc("mapping.embed", cmap, c_dim)
        for i in range(kw.get("mapping_kwargs", {}).get("num_layers", 8)):
            layout |= _fc(f"mapping.fc{i}", cmap, cmap)
    if arch == "skip":
        layout |= {"b4.fromrgb.weight": [c4, img_c, 1, 1], "b4.fromrgb.bias": [c4], "b4.fromrgb.resample_filter": [4, 4]}
    mbstd = kw.get("epilogue_kwargs", {}).get("mbstd_num_channels", 1)
    layout |= {"b4.conv.weight": [c4, c4 + mbstd, 3, 3], "b4.conv.bias": [c4], "b4.conv.resample_filter": [4, 4]}
    return layout | _fc("b4.fc", c4, c4 * 16) | _fc("b4.out", cmap or 1, c4)


_CH = dict(channel_base=256, channel_max=16)
LAYOUT_G = {
    "skip-uncond": dict(c_dim=0, mapping_kwargs=dict(num_layers=8), synthesis_kwargs=dict(**_CH)),
    "orig-cond": dict(c_dim=5, mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(architecture="orig", **_CH)),
    "resnet-gray-filter": dict(c_dim=0, img_channels=1, mapping_kwargs=dict(num_layers=1),
                               synthesis_kwargs=dict(architecture="resnet", resample_filter=[1, 2, 1], **_CH)),
    "cond-embed-hidden": dict(c_dim=3, mapping_kwargs=dict(num_layers=3, embed_features=6, layer_features=10),
                              synthesis_kwargs=dict(num_fp16_res=2, conv_clamp=256, **_CH)),
}
LAYOUT_D = {
    "resnet-uncond": dict(c_dim=0, **_CH),
    "orig-cond": dict(c_dim=4, architecture="orig", mapping_kwargs=dict(num_layers=2), **_CH),
    "skip-gray-cmap": dict(c_dim=2, img_channels=1, architecture="skip", cmap_dim=7, **_CH),
    "resnet-filter-mbstd2": dict(c_dim=0, block_kwargs=dict(resample_filter=[1, 2, 1]),
                                 epilogue_kwargs=dict(mbstd_num_channels=2), num_fp16_res=2, **_CH),
}


@pytest.mark.parametrize("case", LAYOUT_G)
def test_generator_state_has_the_official_names_and_shapes(case):
    kw = dict(z_dim=12, w_dim=10, img_resolution=16, img_channels=3) | LAYOUT_G[case]
    got = {k: list(v.shape) for k, v in Generator(**kw).state_dict().items()}
    assert got == official_generator_layout(kw)


@pytest.mark.parametrize("case", LAYOUT_D)
def test_discriminator_state_has_the_official_names_and_shapes(case):
    kw = dict(img_resolution=16, img_channels=3) | LAYOUT_D[case]
    got = {k: list(v.shape) for k, v in Discriminator(**kw).state_dict().items()}
    assert got == official_discriminator_layout(kw)


def test_a_snapshot_file_computes_what_the_float64_reference_computes(tmp_path):
    # Official-format file in, our modules out, numbers checked against the independent reference
    # evaluated on the tensors that went into the file.
    import numpy as np

    from tests.networks import reference as ref

    G_ema, D = tiny_generator(7), tiny_discriminator(8)
    path = write_official_pickle(tmp_path / "snap.pkl", {"G_ema": G_ema, "D": D, "G": tiny_generator(9)})
    net = stylegan.load_network(path)
    g_sd = {k: v.double().numpy() for k, v in G_ema.state_dict().items()}
    d_sd = {k: v.double().numpy() for k, v in D.state_dict().items()}
    rng = np.random.RandomState(3)
    z, c = rng.randn(4, G_ema.z_dim), np.eye(C_DIM)[[0, 2, 1, 0]]
    ws = ref.mapping(g_sd, "mapping.", z, c, 2, psi=0.6, cutoff=3, num_ws=G_ema.num_ws)
    want = ref.synthesis(g_sd, G_ema.init_kwargs, ws, noise_mode="const")
    with torch.no_grad():
        img = net["G_ema"](torch.from_numpy(z).float(), torch.from_numpy(c).float(), truncation_psi=0.6,
                           truncation_cutoff=3, noise_mode="const")
        logits = net["D"](img, torch.from_numpy(c).float())
    assert np.linalg.norm(img.double().numpy() - want) / np.linalg.norm(want) < 1e-5
    want_d = ref.discriminator(d_sd, D.init_kwargs, img.double().numpy(), c)
    assert np.linalg.norm(logits.double().numpy() - want_d) / np.linalg.norm(want_d) < 1e-5


def test_stylegan3_repo_cfg_stylegan2_generator_loads(tmp_path):
    # The stylegan3 repo's --cfg=stylegan2 passes fused_modconv_default='inference_only' (flat) to the
    # synthesis blocks: a scheduling switch that must be accepted and kept, and that changes no numbers.
    torch.manual_seed(0)
    kw = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, mapping_kwargs={"num_layers": 2})
    G = Generator(**kw, synthesis_kwargs={"channel_base": 64, "channel_max": 8,
                                          "fused_modconv_default": "inference_only"}).eval()
    G.init_kwargs = {k: v for k, v in G.init_kwargs.items() if k != "synthesis_kwargs"} | G.init_kwargs["synthesis_kwargs"]
    net = stylegan.load_network(write_official_pickle(tmp_path / "sg3-cfg-stylegan2.pkl", {"G_ema": G}))
    loaded = net["G_ema"]
    assert loaded.init_kwargs["synthesis_kwargs"]["fused_modconv_default"] == "inference_only"
    assert all(b.fused_modconv_default == "inference_only" for b in loaded.synthesis.blocks())
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(loaded(z, None, noise_mode="const"), G(z, None, noise_mode="const"))


@pytest.mark.parametrize("beta", [0.998, None])
def test_the_stored_w_avg_decay_is_kept_when_the_arguments_leave_it_out(tmp_path, beta):
    # The stylegan3 repo's mapping network defaults to w_avg_beta 0.998 (ADA: 0.995); its files record
    # the value only as the mapping network's attribute.
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
                  mapping_kwargs={"num_layers": 2, "w_avg_beta": beta},
                  synthesis_kwargs={"channel_base": 64, "channel_max": 8}).eval()
    G.init_kwargs["mapping_kwargs"] = {"num_layers": 2}  # as that repository writes it
    loaded = stylegan.load_network(write_official_pickle(tmp_path / "sg3.pkl", {"G_ema": G}))["G_ema"]
    assert loaded.mapping.w_avg_beta == beta
    assert loaded.init_kwargs["mapping_kwargs"]["w_avg_beta"] == beta
    if beta is None:
        return
    # Given explicitly, the argument wins (and is what an ADA file holds).
    G.init_kwargs["mapping_kwargs"] = {"num_layers": 2, "w_avg_beta": 0.9}
    loaded = stylegan.load_network(write_official_pickle(tmp_path / "ada.pkl", {"G_ema": G}))["G_ema"]
    assert loaded.mapping.w_avg_beta == 0.9

