"""Hostile network settings: tiny files that ask for huge or malformed networks are refused before allocation.

Each file is built here from a few lines (a real tiny network whose stored settings are then edited),
and run through the command a user would type, in a fresh process under 4 GiB of address space.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import stylegan
from stylegan.networks import Discriminator, Generator
from tests.formats.official_writer import official_pickle_bytes
from tests.hostile.harness import run_refused

TINY_G = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
              mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=64, channel_max=8))


def tiny_pair() -> tuple[Generator, Discriminator]:
    torch.manual_seed(0)
    G = Generator(**copy.deepcopy(TINY_G)).eval()
    D = Discriminator(c_dim=0, img_resolution=8, img_channels=3, channel_base=64, channel_max=8).eval()
    return G, D


def edited(settings: dict, path: list[str], value) -> dict:
    """A deep copy of ``settings`` with the entry at ``path`` (keys, outermost first) set to ``value``."""
    out = copy.deepcopy(settings)
    where = out
    for key in path[:-1]:
        where = where.setdefault(key, {})
    where[path[-1]] = value
    return out


def pickle_with_g_settings(tmp_path, g_kwargs: dict):
    """An official-layout pickle whose G_ema holds a tiny network's tensors but ``g_kwargs`` as its settings."""
    G, D = tiny_pair()
    G.init_kwargs = g_kwargs
    path = tmp_path / "hostile.pkl"
    path.write_bytes(official_pickle_bytes({"G": None, "D": D, "G_ema": G, "augment_pipe": None}))
    return path


def safetensors_with_metadata(tmp_path, edit) -> "Path":  # noqa: F821
    """A stylegan .safetensors file of a tiny network whose metadata JSON text is ``edit(header)``."""
    G, D = tiny_pair()
    path = tmp_path / "hostile.safetensors"
    stylegan.save_network({"G_ema": G, "D": D}, path)
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(path))
    metadata["stylegan"] = edit(json.loads(metadata["stylegan"]))
    save_file(tensors, str(path), metadata=metadata)
    return path


def g_settings_edit(path: list[str], value):
    def edit(header):
        kwargs = header["networks"]["G_ema"]["init_kwargs"]
        header["networks"]["G_ema"]["init_kwargs"] = edited(kwargs, path, value)
        return json.dumps(header)
    return edit


# (keys, value, what the error line says): every size-like setting, its type, its limit.
HOSTILE_SETTINGS = [
    (["z_dim"], 30000, "z_dim=30000 is over the limit of 4096 (MAX_LATENT_DIM)"),
    (["w_dim"], 30000, "w_dim=30000 is over the limit of 4096 (MAX_LATENT_DIM)"),
    (["c_dim"], 10**9, "(MAX_CLASSES)"),
    (["img_resolution"], 2**20, "(MAX_RESOLUTION)"),
    (["img_resolution"], 48, "not a power of two"),
    (["img_channels"], -3, "img_channels=-3 is below 1"),
    (["z_dim"], 512.0, "z_dim is 512.0, expected an integer"),
    (["z_dim"], True, "z_dim is True, expected an integer"),
    (["w_dim"], "512", "w_dim is '512', expected an integer"),
    (["mapping_kwargs", "num_layers"], 10**6, "num_layers=1000000 is over the limit of 64 (MAX_LAYERS)"),
    (["mapping_kwargs", "layer_features"], 10**5, "(MAX_LATENT_DIM)"),
    (["mapping_kwargs", "activation"], "gelu_in_the_future", "activation 'gelu_in_the_future' is not one of"),
    (["mapping_kwargs", "lr_multiplier"], 0, "lr_multiplier is 0, expected a positive number"),
    (["mapping_kwargs"], [1, 2], "mapping_kwargs is [1, 2], expected a dict"),
    (["synthesis_kwargs", "channel_max"], 10**6, "(MAX_CHANNELS)"),
    (["synthesis_kwargs", "channel_base"], -1, "channel_base=-1 is below 1"),
    (["synthesis_kwargs", "num_fp16_res"], 10**9, "(MAX_LAYERS)"),
    (["synthesis_kwargs", "architecture"], "unet", "architecture 'unet' is not one of"),
    (["synthesis_kwargs", "resample_filter"], [1.0] * 1000, "(MAX_FILTER_TAPS)"),
    (["synthesis_kwargs", "conv_clamp"], "inf", "conv_clamp is 'inf'"),
    # Every setting within its own limit, together a network of 34 G values: refused by the total.
    (["synthesis_kwargs"], dict(channel_base=2**28, channel_max=16384),
     "over the limit of 2000000000 (MAX_PARAMETERS)"),
]


@pytest.mark.parametrize("keys,value,expect", HOSTILE_SETTINGS, ids=lambda v: None)
def test_hostile_settings_in_a_pickle_are_refused_at_info(tmp_path, keys, value, expect):
    path = pickle_with_g_settings(tmp_path, edited(TINY_G, keys, value))
    line = run_refused(["info", "--network", str(path)], cwd=tmp_path, expect=expect)
    assert "G_ema in" in line


def test_the_213_byte_attack_is_refused_at_generate_and_nothing_is_written(tmp_path):
    path = pickle_with_g_settings(tmp_path, edited(edited(TINY_G, ["z_dim"], 30000), ["w_dim"], 30000))
    run_refused(["generate", "--network", str(path), "--seeds", "1", "--outdir", str(tmp_path / "out")],
                cwd=tmp_path, expect="(MAX_LATENT_DIM)")
    assert not (tmp_path / "out").exists()


def test_settings_within_limits_that_the_file_cannot_hold_are_refused_before_building(tmp_path):
    # FFHQ-1024's settings over a 16-value network: 30 M values declared, the file holds a few hundred.
    ffhq = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3,
                mapping_kwargs=dict(num_layers=8), synthesis_kwargs=dict(channel_base=32768, channel_max=512))
    path = pickle_with_g_settings(tmp_path, ffhq)
    line = run_refused(["info", "--network", str(path)], cwd=tmp_path, expect="does not match our Generator")
    assert "its settings describe 33167164 values, the file holds" in line


HOSTILE_METADATA = [
    ("a list", lambda h: json.dumps([h]), "it is a list, not an object"),
    ("a string", lambda h: json.dumps("G_ema"), "it is a str, not an object"),
    ("deep JSON", lambda h: "[" * 100_000 + "]" * 100_000, "nests deeper than 64 levels"),
    ("not JSON", lambda h: "{'networks': ", "is not valid JSON"),
    ("networks a list", lambda h: json.dumps(dict(h, networks=[1, 2])), "'networks' is a list"),
    ("data a string", lambda h: json.dumps(dict(h, data="x")), "'data' is a str"),
    ("training a list", lambda h: json.dumps(dict(h, training=[1])), "'training' is a list"),
    ("version", lambda h: json.dumps(dict(h, stylegan_format="9" * 10_000)), "uses stylegan file format '999"),
    ("class name int", lambda h: json.dumps(_set_info(h, "class_name", 7)), "the class name of 'G_ema' is 7"),
    ("class name list", lambda h: json.dumps(_set_info(h, "class_name", ["Generator"])), "not a string"),
    ("unknown class", lambda h: json.dumps(_set_info(h, "class_name", "Evil")), "unknown network class 'Evil'"),
    ("kind", lambda h: json.dumps(_set_info(h, "kind", {"a": 1})), "has kind {'a': 1}"),
    ("init_kwargs string", lambda h: json.dumps(_set_info(h, "init_kwargs", "abc")), "init_kwargs of 'G_ema'"),
    ("negative dim", g_settings_edit(["w_dim"], -5), "w_dim=-5 is below 1"),
    ("huge z", g_settings_edit(["z_dim"], 30000), "(MAX_LATENT_DIM)"),
    ("num_layers 1e6", g_settings_edit(["mapping_kwargs", "num_layers"], 10**6), "(MAX_LAYERS)"),
    ("activation", g_settings_edit(["mapping_kwargs", "activation"], "nope"), "activation 'nope' is not one of"),
    ("unknown setting", g_settings_edit(["frobnicate"], 1), "unexpected keyword argument 'frobnicate'"),
    ("huge settings", g_settings_edit(["synthesis_kwargs", "resample_filter"], [1] * 20_000), "(MAX_KWARG_ITEMS)"),
    ("long filter", g_settings_edit(["synthesis_kwargs", "resample_filter"], [1] * 1000), "(MAX_FILTER_TAPS)"),
    ("cyclic-looking", g_settings_edit(["mapping_kwargs", "extra"], json.loads("[" * 50 + "]" * 50)),
     "unexpected keyword argument 'extra'"),
]


def _set_info(header, field, value):
    header["networks"]["G_ema"][field] = value
    return header


@pytest.mark.parametrize("name,edit,expect", HOSTILE_METADATA, ids=[case[0] for case in HOSTILE_METADATA])
def test_hostile_safetensors_metadata_is_one_line_at_info(tmp_path, name, edit, expect):
    path = safetensors_with_metadata(tmp_path, edit)
    run_refused(["info", "--network", str(path)], cwd=tmp_path, expect=expect)


@pytest.mark.parametrize("name,edit,expect", HOSTILE_METADATA[8:11] + HOSTILE_METADATA[14:17],
                         ids=[case[0] for case in HOSTILE_METADATA[8:11] + HOSTILE_METADATA[14:17]])
def test_hostile_safetensors_metadata_is_refused_by_convert_and_nothing_is_written(tmp_path, name, edit, expect):
    path = safetensors_with_metadata(tmp_path, edit)
    dest = tmp_path / "out" / "converted.safetensors"
    run_refused(["convert", "--source", str(path), "--dest", str(dest)], cwd=tmp_path, expect=expect)
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def digits8(tmp_path_factory):
    from stylegan.data import convert_dataset
    path = tmp_path_factory.mktemp("data") / "digits16.zip"
    convert_dataset("sklearn-digits", path, resolution=(16, 16), max_images=16, progress=False)
    return path


@pytest.mark.parametrize("keys,value,expect", [
    (["z_dim"], 30000, "(MAX_LATENT_DIM)"),
    (["mapping_kwargs", "num_layers"], 10**6, "(MAX_LAYERS)"),
])
def test_train_resume_from_a_hostile_network_is_refused(tmp_path, digits8, keys, value, expect):
    path = safetensors_with_metadata(tmp_path, g_settings_edit(keys, value))
    outdir = tmp_path / "runs"
    run_refused(["train", "--data", str(digits8), "--outdir", str(outdir), "--resume", str(path), "--kimg", "0.004",
                 "--batch", "4", "--cbase", "64", "--cmax", "8", "--map", "2", "--zdim", "8", "--wdim", "8",
                 "--workers", "0", "--quiet"], cwd=tmp_path, expect=expect)
    assert not list(outdir.rglob("*.safetensors")) if outdir.exists() else True


@pytest.mark.parametrize("raised", ["SafetensorError", "OSError"])
def test_train_on_a_full_disk_keeps_earlier_snapshots_and_says_so(tmp_path, monkeypatch, digits8, raised):
    # In-process, so the writer can be made to fail: safetensors reports a full disk as SafetensorError.
    import errno
    import os

    from safetensors import SafetensorError

    import stylegan.formats.safetensors_io as safetensors_io
    from stylegan.snapshot_names import latest_snapshot
    from tests.training.conftest import run_cli

    real_save, calls = safetensors_io.save_file, []

    def save_file(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 2:
            with open(filename, "wb") as f:
                f.write(b"\0" * 1000)
            if raised == "OSError":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors_io, "save_file", save_file)
    outdir = tmp_path / "runs"
    code, err = run_cli("train", "--data", digits8, "--outdir", outdir, "--kimg", "0.008", "--tick", "0.004",
                        "--snap", "1", "--batch", "4", "--cbase", "64", "--cmax", "8", "--map", "2", "--zdim", "8",
                        "--wdim", "8", "--mbstd-group", "2", "--workers", "0", "--quiet", "--grid", "2x2")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("error: cannot write snapshot ") and ": No space left on device (earlier snapshots are kept;" \
        in err
    assert stylegan.load_network(latest_snapshot(outdir))["G_ema"].z_dim == 8  # the first snapshot is intact
    assert not list(outdir.rglob(".*.tmp"))


def test_ffhq_1024_settings_pass_the_bounds_without_allocating():
    # The official ffhq.pkl's G and D settings (config-f shapes): 30 M values each, laid out on the meta device.
    from stylegan.networks import network_shapes

    G_kwargs = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3,
                    mapping_kwargs=dict(num_layers=8), synthesis_kwargs=dict(
                        channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256, architecture="skip"))
    D_kwargs = dict(c_dim=0, img_resolution=1024, img_channels=3, architecture="resnet", channel_base=32768,
                    channel_max=512, num_fp16_res=4, conv_clamp=256, cmap_dim=None, block_kwargs={},
                    mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=4))
    G_shapes, G_total = network_shapes("Generator", G_kwargs)
    D_shapes, D_total = network_shapes("Discriminator", D_kwargs)
    G_params = sum(s.numel() for name, s in G_shapes.items() if "noise_const" not in name and "filter" not in name
                   and "w_avg" not in name)
    assert G_params == 30_370_060 and len(G_shapes) == 182 and G_shapes["synthesis.b1024.torgb.weight"] == (3, 32, 1, 1)
    assert 29_000_000 < D_total < 29_100_000
    assert G_total < 34_000_000
