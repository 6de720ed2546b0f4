"""StyleGAN2 and StyleGAN2-ADA TensorFlow pickles load as our StyleGAN2 networks, with the official
converter's weight conversion (re-derived independently here) and TF's conditioning where ours differs."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

import stylegan
from stylegan.errors import StyleGANError
from stylegan.networks import Discriminator, Generator
from tests.formats.tf_writer import stylegan2_discriminator, stylegan2_generator, stylegan2_snapshot, write_tf_pickle

SQRT2 = math.sqrt(2)


def load(tmp_path, nets, name="net.pkl"):
    return stylegan.load_network(write_tf_pickle(tmp_path / name, nets))


# --------------------------------------------------------------------------------------------------
# An independent re-derivation of the official converter's rules (stylegan2-ada-pytorch legacy.py):
# a table from our parameter names to a function of the TF variables.


def conv(w, flip=False):
    w = np.asarray(w)
    return (w[::-1, ::-1] if flip else w).transpose(3, 2, 0, 1)


def expected_generator_state(tf_vars: dict, log2: int) -> dict[str, np.ndarray]:
    rules = [
        (r"mapping\.w_avg", lambda: tf_vars["dlatent_avg"]),
        (r"mapping\.embed\.weight", lambda: tf_vars["mapping/LabelEmbed/weight"].T),
        (r"mapping\.embed\.bias", lambda: tf_vars["mapping/LabelEmbed/bias"]),
        (r"mapping\.label_concat\.weight", lambda: tf_vars["mapping/LabelConcat/weight"].T),
        (r"mapping\.fc(\d+)\.weight", lambda i: tf_vars[f"mapping/Dense{i}/weight"].T),
        (r"mapping\.fc(\d+)\.bias", lambda i: tf_vars[f"mapping/Dense{i}/bias"]),
        (r"synthesis\.b4\.const", lambda: tf_vars["synthesis/4x4/Const/const"][0]),
        (r"synthesis\.b4\.conv1\.noise_const", lambda: tf_vars["synthesis/noise0"][0, 0]),
        (r"synthesis\.b4\.conv1\.(weight|bias|noise_strength|affine\.weight|affine\.bias)",
         lambda p: layer_param(tf_vars, "synthesis/4x4/Conv", p)),
        (r"synthesis\.b(\d+)\.conv0\.noise_const",
         lambda r: tf_vars[f"synthesis/noise{int(math.log2(int(r))) * 2 - 5}"][0, 0]),
        (r"synthesis\.b(\d+)\.conv1\.noise_const",
         lambda r: tf_vars[f"synthesis/noise{int(math.log2(int(r))) * 2 - 4}"][0, 0]),
        (r"synthesis\.b(\d+)\.conv0\.(weight|bias|noise_strength|affine\.weight|affine\.bias)",
         lambda r, p: layer_param(tf_vars, f"synthesis/{r}x{r}/Conv0_up", p, flip=True)),
        (r"synthesis\.b(\d+)\.conv1\.(weight|bias|noise_strength|affine\.weight|affine\.bias)",
         lambda r, p: layer_param(tf_vars, f"synthesis/{r}x{r}/Conv1", p)),
        (r"synthesis\.b(\d+)\.torgb\.(weight|bias|affine\.weight|affine\.bias)",
         lambda r, p: layer_param(tf_vars, f"synthesis/{r}x{r}/ToRGB", p)),
        (r"synthesis\.b(\d+)\.skip\.weight", lambda r: conv(tf_vars[f"synthesis/{r}x{r}/Skip/weight"], flip=True)),
    ]
    return rules


def layer_param(tf_vars, scope, param, flip=False):
    if param == "weight":
        return conv(tf_vars[f"{scope}/weight"], flip)
    if param == "affine.weight":
        return tf_vars[f"{scope}/mod_weight"].T
    if param == "affine.bias":
        return tf_vars[f"{scope}/mod_bias"] + 1
    return tf_vars[f"{scope}/{param}"]


def apply_rules(module: torch.nn.Module, rules, keep: str = r".*resample_filter") -> dict[str, np.ndarray]:
    """Our module's state dict filled from the rules; names matching ``keep`` keep their built values."""
    out = {}
    for name, value in module.state_dict().items():
        if re.fullmatch(keep, name):
            out[name] = value.numpy()
            continue
        for pattern, fn in rules:
            m = re.fullmatch(pattern, name)
            if m:
                out[name] = np.asarray(fn(*m.groups()), dtype=np.float32)
                break
        else:
            raise AssertionError(f"no rule for {name}")
    return out


def independently_converted_generator(tf_G, synthesis_only: bool = False, **mapping_extra) -> Generator:
    """Our Generator built from the TF kwargs by the converter's rules, weights by the table above
    (only the synthesis network's with ``synthesis_only``)."""
    k = tf_G.static_kwargs
    G = Generator(z_dim=k["latent_size"], c_dim=k["label_size"], w_dim=k["dlatent_size"],
                  img_resolution=k["resolution"], img_channels=k["num_channels"],
                  mapping_kwargs=dict(num_layers=k["mapping_layers"], **mapping_extra),
                  synthesis_kwargs=dict(channel_base=2 * k["fmap_base"], channel_max=k["fmap_max"],
                                        architecture=k["architecture"],
                                        use_noise=k.get("use_noise", True)))
    tf_vars = tf_G.all_variables()
    keep = r"mapping\..*|.*resample_filter" if synthesis_only else r".*resample_filter"
    state = apply_rules(G, expected_generator_state(tf_vars, int(math.log2(k["resolution"]))), keep)
    G.load_state_dict({n: torch.from_numpy(v.copy()) for n, v in state.items()})
    return G.eval().requires_grad_(False)  # as loaded networks are (which selects the same code paths)


def assert_same_state(ours: torch.nn.Module, theirs: torch.nn.Module):
    a, b = ours.state_dict(), theirs.state_dict()
    assert sorted(a) == sorted(b)
    for name in a:
        assert torch.equal(a[name], b[name]), name


# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ada", [False, True], ids=["stylegan2", "ada"])
@pytest.mark.parametrize("architecture", ["skip", "resnet", "orig"])
def test_generator_matches_the_converters_rules(tmp_path, ada, architecture):
    nets = stylegan2_snapshot(3, ada=ada, architecture=architecture)
    net = load(tmp_path, nets)
    assert net["format"] == ("StyleGAN2-ADA TensorFlow pickle" if ada else "StyleGAN2 TensorFlow pickle")
    for key, tf_net in (("G", nets[0]), ("G_ema", nets[2])):
        G = net[key]
        assert type(G) is Generator and not G.training
        reference = independently_converted_generator(tf_net)
        assert_same_state(G, reference)
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(G(z, None, noise_mode="const"), reference(z, None, noise_mode="const"), rtol=0, atol=0)


def test_generator_matches_the_float64_reference(tmp_path):
    """Our StyleGAN2 numerics on the converted weights against tests/networks/reference.py."""
    from tests.networks import reference as ref

    nets = stylegan2_snapshot(5, architecture="resnet")
    G = load(tmp_path, nets)["G_ema"]
    sd = {k: v.double().numpy() for k, v in G.state_dict().items()}
    kw = dict(G.init_kwargs, synthesis_kwargs=dict(G.init_kwargs["synthesis_kwargs"]))
    z = np.random.RandomState(0).randn(2, G.z_dim)
    ws = ref.mapping(sd, "mapping.", z, None, num_layers=kw["mapping_kwargs"]["num_layers"], num_ws=G.num_ws)
    img = ref.synthesis(sd, kw, ws, noise_mode="const")
    ours = G(torch.from_numpy(z).float(), None, noise_mode="const").double().numpy()
    assert np.linalg.norm(ours - img) / np.linalg.norm(img) < 1e-5


def test_ada_conditional_generator(tmp_path):
    nets = stylegan2_snapshot(4, ada=True, c_dim=3, z_dim=8, w_dim=6)
    G = load(tmp_path, nets)["G_ema"]
    assert type(G) is Generator and G.c_dim == 3
    # ADA's label embedding is z_dim wide (label_fmaps = None means latent_size in the TF code).
    reference = independently_converted_generator(nets[2], embed_features=8)
    assert_same_state(G, reference)
    z, c = torch.randn(4, 8), torch.eye(3)[[0, 1, 2, 1]]
    torch.testing.assert_close(G(z, c, noise_mode="const"), reference(z, c, noise_mode="const"), rtol=0, atol=0)


def tf_label_concat_mapping(tf_vars: dict, z: np.ndarray, c: np.ndarray, num_layers: int, lrmul=0.01) -> np.ndarray:
    """float64 StyleGAN2-TF G_mapping: [z, c @ W] → joint pixel norm → dense (he-std · lrmul) + lrelu·√2."""
    x = np.concatenate([z, c @ tf_vars["mapping/LabelConcat/weight"]], axis=1)
    x = x / np.sqrt(np.mean(x**2, axis=1, keepdims=True) + 1e-8)
    for i in range(num_layers):
        w = tf_vars[f"mapping/Dense{i}/weight"].astype(np.float64)
        x = x @ (w * (lrmul / np.sqrt(w.shape[0]))) + tf_vars[f"mapping/Dense{i}/bias"] * lrmul
        x = np.where(x >= 0, x, 0.2 * x) * SQRT2
    return x


def test_conditional_stylegan2_tf_generator_uses_label_concat(tmp_path):
    nets = stylegan2_snapshot(6, c_dim=4, z_dim=8, w_dim=8)
    G = load(tmp_path, nets)["G_ema"]
    assert type(G).__name__ == "LabelConcatGenerator" and G.c_dim == 4 and G.z_dim == 8
    tf_vars = {k: np.asarray(v, np.float64) for k, v in nets[2].all_variables().items()}
    rs = np.random.RandomState(1)
    z = rs.randn(5, 8)
    c = np.concatenate([np.eye(4)[[0, 3, 2]], rs.rand(2, 4)])  # one-hot and soft labels
    expected_w = tf_label_concat_mapping(tf_vars, z, c, num_layers=2)
    ws = G.mapping(torch.from_numpy(z).float(), torch.from_numpy(c).float())
    assert ws.shape == (5, G.num_ws, 8)
    assert np.abs(ws.double().numpy() - expected_w[:, None]).max() < 1e-5 * np.abs(expected_w).max()
    # Truncation: towards dlatent_avg.
    avg = tf_vars["dlatent_avg"]
    wt = G.mapping(torch.from_numpy(z).float(), torch.from_numpy(c).float(), truncation_psi=0.5, truncation_cutoff=3)
    np.testing.assert_allclose(wt[:, :3].double().numpy(), (avg + 0.5 * (expected_w - avg))[:, None].repeat(3, 1),
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(wt[:, 3:], ws[:, 3:], rtol=0, atol=0)
    # The synthesis is the plain StyleGAN2 one: same as an unconditional network with those weights.
    plain = independently_converted_generator(
        type(nets[2])(nets[2].name, nets[2].build_func_name, dict(nets[2].static_kwargs, label_size=0),
                      nets[2].variables, nets[2].components), synthesis_only=True)
    torch.testing.assert_close(G.synthesis(ws, noise_mode="const"), plain.synthesis(ws, noise_mode="const"),
                               rtol=0, atol=0)


def test_conditional_stylegan2_tf_discriminator_scores_per_label(tmp_path):
    nets = stylegan2_snapshot(7, c_dim=3)
    D = load(tmp_path, nets)["D"]
    assert type(D).__name__ == "LabelScoreDiscriminator" and D.c_dim == 3
    tf_vars = nets[1].all_variables()
    img = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    # One-label networks: the TF D's Output column k alone, as an unconditional D (converter's rules).
    per_label = []
    for k in range(3):
        plain = Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=64, channel_max=8,
                              epilogue_kwargs=dict(mbstd_group_size=None))
        state = {}
        for name in plain.state_dict():
            if name.endswith("resample_filter"):
                state[name] = plain.state_dict()[name]
                continue
            block, layer, param = re.fullmatch(r"b(\d+)\.(\w+)\.(weight|bias)", name).groups()
            scope = {"fromrgb": "FromRGB", "conv0": "Conv0", "conv1": "Conv1_down", "skip": "Skip",
                     "conv": "Conv", "fc": "Dense0", "out": "Output"}[layer]
            key = "Output" if layer == "out" else f"{block}x{block}/{scope}"
            value = tf_vars[f"{key}/{param}"]
            if layer == "out":
                value = value[:, k:k + 1] if param == "weight" else value[k:k + 1]
            state[name] = torch.from_numpy(np.ascontiguousarray(conv(value) if value.ndim == 4 else
                                                                 value.T if value.ndim == 2 else value))
        plain.load_state_dict(state)
        per_label.append(plain.eval().requires_grad_(False)(img))
    per_label = torch.cat(per_label, dim=1)  # [N, 3]
    c = torch.tensor([[1.0, 0, 0], [0, 0, 1], [0.2, 0.5, 0.3], [0, 0, 0]])
    torch.testing.assert_close(D(img, c), (per_label * c).sum(1, keepdim=True), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ada", [False, True], ids=["stylegan2", "ada"])
@pytest.mark.parametrize("architecture", ["resnet", "skip", "orig"])
def test_discriminator_matches_the_converters_rules(tmp_path, ada, architecture):
    nets = stylegan2_snapshot(8, ada=ada, d_kwargs=dict(architecture=architecture))
    D = load(tmp_path, nets)["D"]
    assert type(D) is Discriminator
    tf_vars = nets[1].all_variables()
    rules = [
        (r"b(\d+)\.fromrgb\.(weight|bias)", lambda r, p: dvar(tf_vars, f"{r}x{r}/FromRGB", p)),
        (r"b(\d+)\.conv0\.(weight|bias)", lambda r, p: dvar(tf_vars, f"{r}x{r}/Conv0", p)),
        (r"b(\d+)\.conv1\.(weight|bias)", lambda r, p: dvar(tf_vars, f"{r}x{r}/Conv1_down", p)),
        (r"b(\d+)\.skip\.weight", lambda r: dvar(tf_vars, f"{r}x{r}/Skip", "weight")),
        (r"b4\.conv\.(weight|bias)", lambda p: dvar(tf_vars, "4x4/Conv", p)),
        (r"b4\.fc\.(weight|bias)", lambda p: dvar(tf_vars, "4x4/Dense0", p)),
        (r"b4\.out\.(weight|bias)", lambda p: dvar(tf_vars, "Output", p)),
    ]
    reference = Discriminator(c_dim=0, img_resolution=16, img_channels=3, architecture=architecture,
                              channel_base=64, channel_max=8, epilogue_kwargs=dict(mbstd_group_size=None))
    state = apply_rules(reference, rules)
    reference.load_state_dict({n: torch.from_numpy(v.copy()) for n, v in state.items()})
    assert_same_state(D, reference)
    img = torch.randn(8, 3, 16, 16)
    torch.testing.assert_close(D(img), reference.eval().requires_grad_(False)(img), rtol=0, atol=0)


def dvar(tf_vars, scope, param):
    v = tf_vars[f"{scope}/{param}"]
    return conv(v) if v.ndim == 4 else v.T if v.ndim == 2 else v


def test_minibatch_std_group_follows_the_converter(tmp_path):
    """Absent from the file: the whole batch (as the official converter, not TF's 4); given: as given;
    StyleGAN2-TF's 0 or 1: no minibatch-std layer at all."""
    G = stylegan2_generator(1)
    for group, expected in ((None, None), (4, 4), (2, 2)):
        D = load(tmp_path, (G, stylegan2_discriminator(2, mbstd_group_size=group), G))["D"]
        assert D.b4.mbstd.group_size == expected
    D = load(tmp_path, (G, stylegan2_discriminator(2, mbstd_group_size=1), G))["D"]
    assert D.b4.mbstd is None
    img = torch.randn(8, 3, 16, 16)
    whole = load(tmp_path, (G, stylegan2_discriminator(2), G))["D"]
    four = load(tmp_path, (G, stylegan2_discriminator(2, mbstd_group_size=4), G))["D"]
    assert not torch.allclose(whole(img), four(img))  # the choice is visible for batches > 4
    torch.testing.assert_close(whole(img[:4]), four(img[:4]), rtol=0, atol=0)


def test_ada_conditional_discriminator(tmp_path):
    nets = stylegan2_snapshot(9, ada=True, c_dim=3, d_kwargs=dict(mapping_layers=2))
    D = load(tmp_path, nets)["D"]
    assert type(D) is Discriminator and D.c_dim == 3
    tf_vars = {k: np.asarray(v, np.float64) for k, v in nets[1].all_variables().items()}
    # The mapped label, in float64 as D_main computes it: LabelEmbed → 2nd-moment norm → Mapping{i}.
    c = np.eye(3)[[0, 2]]
    y = c @ (tf_vars["LabelEmbed/weight"] / np.sqrt(3)) + tf_vars["LabelEmbed/bias"]
    y = y / np.sqrt(np.mean(y**2, axis=1, keepdims=True) + 1e-8)
    for i in range(2):
        w = tf_vars[f"Mapping{i}/weight"]
        y = y @ (w * 0.1 / np.sqrt(w.shape[0])) + tf_vars[f"Mapping{i}/bias"] * 0.1
        y = np.where(y >= 0, y, 0.2 * y) * SQRT2
    cmap = D.mapping(None, torch.from_numpy(c).float())
    np.testing.assert_allclose(cmap.double().numpy(), y, rtol=1e-5, atol=1e-5)


def test_defaults_where_the_file_omits_kwargs(tmp_path):
    """Kwargs a file leaves out take the TF code's defaults (architecture, resample kernel, ...)."""
    G = stylegan2_generator(1, write_defaults=False)  # variables for the default 'skip' architecture
    del G.static_kwargs["architecture"]
    D = stylegan2_discriminator(2)  # variables for the default 'resnet' architecture
    del D.static_kwargs["architecture"]
    net = load(tmp_path, (G, D, G))
    sk = net["G_ema"].init_kwargs["synthesis_kwargs"]
    assert sk["architecture"] == "skip" and sk["resample_filter"] == [1, 3, 3, 1] and sk["channel_base"] == 64
    assert net["D"].init_kwargs["architecture"] == "resnet"
    assert_same_state(net["G_ema"], independently_converted_generator(
        type(G)(G.name, G.build_func_name, dict(G.static_kwargs, architecture="skip"), G.variables, G.components)))


def test_unknown_kwargs_are_named(tmp_path):
    G = stylegan2_generator(1, extra_kwargs=dict(my_new_option=3, another=True))
    with pytest.raises(StyleGANError) as info:
        load(tmp_path, (G, stylegan2_discriminator(2), G))
    assert "unknown TensorFlow kwargs: another=True, my_new_option=3" in str(info.value)
    D = stylegan2_discriminator(2, ada=True, extra_kwargs=dict(use_spectral_norm=True))
    G = stylegan2_generator(1, ada=True)
    with pytest.raises(StyleGANError, match=r"use_spectral_norm=True, which this converter does not support"):
        load(tmp_path, (G, D, G))


def test_safetensors_round_trip(tmp_path):
    for name, nets in {"sg2c": stylegan2_snapshot(10, c_dim=3), "adac": stylegan2_snapshot(11, ada=True, c_dim=2),
                       "sg2": stylegan2_snapshot(12, architecture="resnet")}.items():
        net = load(tmp_path, nets, f"{name}.pkl")
        stylegan.save_network(net, tmp_path / f"{name}.safetensors")
        again = stylegan.load_network(tmp_path / f"{name}.safetensors")
        for key in ("G", "D", "G_ema"):
            assert type(again[key]) is type(net[key]) and again[key].init_kwargs == net[key].init_kwargs
            assert_same_state(again[key], net[key])
        G = net["G_ema"]
        z = torch.randn(2, G.z_dim)
        c = torch.eye(G.c_dim)[:2] if G.c_dim else None
        torch.testing.assert_close(again["G_ema"](z, c, noise_mode="const"), G(z, c, noise_mode="const"),
                                   rtol=0, atol=0)
        img = torch.randn(2, 3, 16, 16)
        torch.testing.assert_close(again["D"](img, c), net["D"](img, c), rtol=0, atol=0)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_every_pickle_protocol_and_numpy_scalars_in_kwargs(tmp_path, protocol):
    """Official files are protocol 3 (Python 3.6) with numpy ints in the kwargs (from dataset shapes)."""
    G, D, Gs = stylegan2_snapshot(13)
    for net in (G, D, Gs):
        net.static_kwargs.update(resolution=np.int64(16), num_channels=np.int64(3), label_size=np.int64(0))
    net = stylegan.load_network(write_tf_pickle(tmp_path / "p.pkl", (G, D, Gs), protocol=protocol))
    assert net["G_ema"].img_resolution == 16 and type(net["G_ema"].init_kwargs["img_resolution"]) is int
    assert_same_state(net["G_ema"], independently_converted_generator(Gs))
