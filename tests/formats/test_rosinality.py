"""rosinality/stylegan2-pytorch checkpoints: loading them, and writing ours in their layout.

The checkpoints are written by tests/formats/rosinality_writer.py from a table of rosinality's tensor names
and shapes (from its model.py: Generator(size, style_dim, n_mlp, channel_multiplier) and
Discriminator(size, channel_multiplier)). Pixels are checked against that module's independent float64
re-derivation of rosinality's forward pass, and, where the mirror of rosinality's repository is on this
machine, against its own model.py run on the CPU (its CUDA ops replaced by the reference's plain
definitions). The mirror test skips on a clean machine.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import stylegan
from stylegan.errors import StyleGANError
from stylegan.networks import Discriminator, Generator
from tests.formats.rosinality_writer import (discriminator_table, generator_table, lrelu, ref_discriminator,
                                             ref_generator, ref_mapping, rel_l2, rosinality_channels,
                                             small_discriminator_state, small_generator_state, upfirdn2d)

# A clone of rosinality/stylegan2-pytorch (bare or not); the comparison with its own code skips without one.
MIRROR = Path(os.environ.get("STYLEGAN_ROSINALITY_REPO", "/work/.mirror/rosinality+stylegan2-pytorch/repo"))


# float32 against float64 through ~10 layers of sums over ≤ 512·9 terms: errors of order 1e-6 relative.
TOLERANCE = 1e-4


# --------------------------------------------------------------------------------------------------
# Loading


@pytest.fixture(scope="module")
def train_checkpoint(tmp_path_factory):
    """A train.py-style checkpoint: g, d, g_ema, optimizer states, an argparse.Namespace, ada_aug_p."""
    import argparse

    g_ema, g, d = small_generator_state(0), small_generator_state(5), small_discriminator_state(1)
    params = [torch.nn.Parameter(torch.zeros(3))]
    opt = torch.optim.Adam(params, lr=0.002, betas=(0.0, 0.99))
    params[0].grad = torch.ones(3)
    opt.step()
    args = argparse.Namespace(path="lmdb", arch="stylegan2", iter=800000, batch=16, size=32, r1=10.0,
                              channel_multiplier=2, augment=True, augment_p=0.0, ada_target=0.6, latent=24,
                              n_mlp=3, start_iter=0, lr=0.002, wandb=False, local_rank=0, distributed=False)
    path = tmp_path_factory.mktemp("rosinality") / "000100.pt"
    torch.save({"g": g, "d": d, "g_ema": g_ema, "g_optim": opt.state_dict(), "d_optim": opt.state_dict(),
                "args": args, "ada_aug_p": 0.125}, path)
    return path, dict(g_ema=g_ema, g=g, d=d)


def test_convert_weight_layout_gives_rosinality_pixels_with_its_truncation(tmp_path):
    sd = small_generator_state(0)
    latent_avg = torch.randn(24, generator=torch.Generator().manual_seed(3))
    torch.save({"g_ema": sd, "latent_avg": latent_avg}, tmp_path / "net.pt")
    net = stylegan.load_network(tmp_path / "net.pt")
    G = net["G_ema"]
    assert isinstance(G, Generator) and set(net) == {"G_ema", "format"}
    assert net["format"] == "rosinality checkpoint (convert_weight.py)"
    assert (G.img_resolution, G.z_dim, G.w_dim, G.mapping.num_layers, G.num_ws) == (32, 24, 24, 3, 8)
    assert torch.equal(G.mapping.w_avg, latent_avg)
    z = torch.randn(3, 24, generator=torch.Generator().manual_seed(4))
    for psi in (1.0, 0.6):  # truncation toward latent_avg on every layer = our truncation_cutoff=None
        ours = G(z, None, truncation_psi=psi, truncation_cutoff=None, noise_mode="const")
        assert rel_l2(ours, ref_generator(sd, z, psi, latent_avg)) < TOLERANCE


def test_train_checkpoint_loads_g_d_g_ema_and_its_args_as_data(train_checkpoint):
    path, states = train_checkpoint
    net = stylegan.load_network(path)
    assert net["format"] == "rosinality checkpoint (train.py; no latent_avg: w_avg is the mean of 4096 mapped latents)"
    assert isinstance(net["D"], Discriminator) and net["D"].img_resolution == 32
    assert net["ada_aug_p"] == 0.125
    assert net["training_args"]["arch"] == "stylegan2" and net["training_args"]["n_mlp"] == 3
    z = torch.randn(2, 24, generator=torch.Generator().manual_seed(7))
    for key, state in (("G_ema", states["g_ema"]), ("G", states["g"])):
        assert rel_l2(net[key](z, None, noise_mode="const"), ref_generator(state, z)) < TOLERANCE
    img = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(8))
    assert rel_l2(net["D"](img), ref_discriminator(states["d"], img)) < TOLERANCE


def test_without_latent_avg_w_avg_is_the_mean_of_4096_mapped_latents(train_checkpoint):
    path, states = train_checkpoint
    G = stylegan.load_network(path)["G_ema"]
    z = torch.randn(4096, 24, generator=torch.Generator().manual_seed(0))
    # The reference maps the same latents through the float64 mapping network (ψ=1, no synthesis needed).
    assert rel_l2(G.mapping.w_avg, ref_mapping(states["g_ema"], z).mean(0)) < TOLERANCE
    assert torch.equal(stylegan.load_network(path)["G_ema"].mapping.w_avg, G.mapping.w_avg)  # reproducible


def test_rosinality_channel_table_is_read_with_its_multiplier():
    from stylegan.formats.rosinality import channel_settings
    from stylegan.networks.stylegan2 import channel_table

    for m in (1, 2):
        widths = rosinality_channels(1024, m)
        base, cmax = channel_settings(widths, "x")
        assert channel_table(list(widths), base, cmax) == widths
    with pytest.raises(StyleGANError, match="cannot express"):
        channel_settings(rosinality_channels(1024, 4), "x")  # 512 at 32², 1024 at 64²: not min(base/r, max)


def test_a_misfit_state_dict_names_what_differs(tmp_path):
    sd = small_generator_state(0)
    for change, expect in ((lambda s: s.pop("convs.1.activate.bias"), "missing convs.1.activate.bias"),
                           (lambda s: s.update({"extra.weight": torch.zeros(1)}), "unexpected extra.weight"),
                           (lambda s: s.update({"convs.1.activate.bias": torch.zeros(5)}), "has shape [5]"),
                           (lambda s: s.update({"convs.0.conv.blur.kernel": torch.ones(4, 4)}), "blur kernel")):
        broken = dict(sd)
        change(broken)
        torch.save({"g_ema": broken, "latent_avg": torch.zeros(24)}, tmp_path / "bad.pt")
        with pytest.raises(StyleGANError, match=re.escape(expect)):
            stylegan.load_network(tmp_path / "bad.pt")


# --------------------------------------------------------------------------------------------------
# Writing


def rosinality_sized(seed: int = 0, size: int = 8, w_dim: int = 16, n_mlp: int = 2, lr: float = 0.01):
    """Our Generator and Discriminator with rosinality's channel table (512 up to 32²), weights off init."""
    from tests.formats.conftest import perturbed

    torch.manual_seed(seed)
    G = Generator(z_dim=w_dim, c_dim=0, w_dim=w_dim, img_resolution=size, img_channels=3,
                  mapping_kwargs=dict(num_layers=n_mlp, lr_multiplier=lr),
                  synthesis_kwargs=dict(channel_base=32768, channel_max=512, conv_clamp=256))
    D = Discriminator(c_dim=0, img_resolution=size, img_channels=3, channel_base=32768, channel_max=512)
    return perturbed(G, seed + 1), perturbed(D, seed + 2)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    G, D = rosinality_sized(lr=0.05)  # a mapping lr other than rosinality's 0.01 is folded into the weights
    folder = tmp_path_factory.mktemp("export")
    stylegan.save_network({"G_ema": G, "G": G, "D": D}, folder / "ours.safetensors")
    from click.testing import CliRunner
    from stylegan.cli import cli

    result = CliRunner().invoke(cli, ["convert", "--source", str(folder / "ours.safetensors"),
                                       "--dest", str(folder / "out.pt"), "--to", "rosinality"])
    assert result.exit_code == 0, result.output
    return G, D, folder / "out.pt", result.output


def test_export_holds_rosinality_names_and_shapes_and_loads_with_weights_only(exported):
    G, _, path, output = exported
    assert "Generator(size=8, style_dim=16, n_mlp=2, channel_multiplier=2)" in output
    ckpt = torch.load(path, weights_only=True)
    assert set(ckpt) == {"g_ema", "latent_avg", "g", "d"}
    ch = rosinality_channels(8, 2)
    for key, table in (("g_ema", generator_table(8, 16, 2, ch)), ("g", generator_table(8, 16, 2, ch)),
                       ("d", discriminator_table(8, ch))):
        assert {k: tuple(v.shape) for k, v in ckpt[key].items()} == table
    assert torch.equal(ckpt["latent_avg"], G.mapping.w_avg)


def test_export_gives_the_same_pixels_through_rosinality_arithmetic_and_back(exported):
    G, D, path, _ = exported
    ckpt = torch.load(path, weights_only=True)
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(5))
    for psi in (1.0, 0.7):
        ours = G(z, None, truncation_psi=psi, noise_mode="const")
        assert rel_l2(ours, ref_generator(ckpt["g_ema"], z, psi, ckpt["latent_avg"])) < TOLERANCE
        back = stylegan.load_network(path)["G_ema"](z, None, truncation_psi=psi, noise_mode="const")
        assert rel_l2(back, ours.double()) < TOLERANCE
    img = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    assert rel_l2(D(img), ref_discriminator(ckpt["d"], img)) < TOLERANCE


@pytest.mark.parametrize("change, expect", [
    (dict(c_dim=3), "conditional"),
    (dict(synthesis_kwargs=dict(channel_base=32768, channel_max=512, architecture="resnet")), "resnet generator"),
    (dict(synthesis_kwargs=dict(channel_base=256, channel_max=16)), "512 channels up to 32x32"),
])
def test_networks_the_layout_cannot_express_are_refused_saying_why(change, expect):
    from stylegan.formats.rosinality_export import rosinality_checkpoint

    kwargs = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
                  mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(channel_base=32768, channel_max=512))
    G = Generator(**{**kwargs, **change})
    with pytest.raises(StyleGANError, match=expect):
        rosinality_checkpoint({"G_ema": G}, "net.pkl")


# --------------------------------------------------------------------------------------------------
# rosinality's own model.py (only where the mirror is present)

class FusedLeakyReLU(torch.nn.Module):
    """rosinality's op.FusedLeakyReLU on the CPU: a learned per-channel bias, then the reference's lrelu."""

    def __init__(self, channels, bias=True, slope=0.2, gain=2 ** 0.5):
        super().__init__()
        assert (slope, gain) == (0.2, 2 ** 0.5), "model.py only uses the defaults"
        self.bias = torch.nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x):
        return lrelu(x, self.bias)


def plain_op_module() -> types.ModuleType:
    """Plain-PyTorch stand-ins for rosinality's CUDA ``op`` package (their CPU definitions), for tests only."""
    op = types.ModuleType("op")
    op.FusedLeakyReLU, op.fused_leaky_relu, op.upfirdn2d = FusedLeakyReLU, lrelu, upfirdn2d
    op.conv2d_gradfix = types.SimpleNamespace(conv2d=F.conv2d, conv_transpose2d=F.conv_transpose2d)
    return op


@pytest.fixture(scope="module")
def rosinality_model(tmp_path_factory):
    if not (MIRROR / "HEAD").exists() and not (MIRROR / ".git").exists():
        pytest.skip("rosinality/stylegan2-pytorch is not mirrored on this machine")
    source = subprocess.run(["git", "-C", str(MIRROR), "show", "HEAD:model.py"], capture_output=True, text=True)
    if source.returncode != 0:
        pytest.skip("cannot read rosinality's model.py from the mirror")
    folder = tmp_path_factory.mktemp("rosinality_code")
    (folder / "rosinality_model.py").write_text(source.stdout)
    saved_op = sys.modules.pop("op", None)
    sys.modules["op"] = plain_op_module()  # what model.py's `from op import ...` finds
    try:
        spec = importlib.util.spec_from_file_location("rosinality_model", folder / "rosinality_model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop("op", None)
        if saved_op is not None:
            sys.modules["op"] = saved_op
    return module


def test_rosinality_generator_takes_our_export_strictly_and_draws_the_same_pixels(exported, rosinality_model):
    G, D, path, _ = exported
    ckpt = torch.load(path, weights_only=True)
    theirs = rosinality_model.Generator(8, 16, 2, channel_multiplier=2)
    theirs.load_state_dict(ckpt["g_ema"], strict=True)
    disc = rosinality_model.Discriminator(8, channel_multiplier=2)
    disc.load_state_dict(ckpt["d"], strict=True)
    theirs, disc = theirs.double().eval(), disc.double().eval()
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        for psi in (1.0, 0.7):
            img, _ = theirs([z.double()], truncation=psi, truncation_latent=ckpt["latent_avg"].double(),
                            randomize_noise=False)
            assert rel_l2(G(z, None, truncation_psi=psi, noise_mode="const"), img) < TOLERANCE
        x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(10))
        assert rel_l2(D(x), disc(x.double())) < TOLERANCE


def test_rosinality_networks_load_with_the_same_pixels(tmp_path, rosinality_model):
    torch.manual_seed(0)
    theirs = rosinality_model.Generator(8, 16, 2, channel_multiplier=2)
    disc = rosinality_model.Discriminator(8, channel_multiplier=2)
    with torch.no_grad():  # biases and noise strengths start at 0: move them so that a lost one would show
        for module in (theirs, disc):
            for name, p in module.named_parameters():
                if name.endswith("bias") or name.endswith("noise.weight"):
                    p.add_(0.2 * torch.randn_like(p))
        latent_avg = theirs.mean_latent(4096)[0]
    torch.save({"g_ema": theirs.state_dict(), "d": disc.state_dict(), "latent_avg": latent_avg}, tmp_path / "r.pt")
    net = stylegan.load_network(tmp_path / "r.pt")
    theirs, disc = theirs.double().eval(), disc.double().eval()
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        img, _ = theirs([z.double()], truncation=0.5, truncation_latent=latent_avg.double(), randomize_noise=False)
        assert rel_l2(net["G_ema"](z, None, truncation_psi=0.5, noise_mode="const"), img) < TOLERANCE
        x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(12))
        assert rel_l2(net["D"](x), disc(x.double())) < TOLERANCE


# --------------------------------------------------------------------------------------------------
# Every source we load: official PyTorch and TensorFlow pickles (written by the tests' own writers)


def export_via_cli(source: Path, dest: Path) -> dict:
    from click.testing import CliRunner
    from stylegan.cli import cli

    result = CliRunner().invoke(cli, ["convert", "--source", str(source), "--dest", str(dest), "--to", "rosinality"])
    assert result.exit_code == 0, result.output
    return torch.load(dest, weights_only=True)


def test_official_pytorch_and_tensorflow_pickles_export_with_the_same_pixels(tmp_path):
    from tests.formats.official_writer import write_official_pickle
    from tests.formats.tf_writer import stylegan2_snapshot, write_tf_pickle

    G, D = rosinality_sized(seed=3)
    sources = {"official": write_official_pickle(tmp_path / "ada.pkl", {"G": G, "D": D, "G_ema": G}),
               "tf": write_tf_pickle(tmp_path / "tf.pkl", stylegan2_snapshot(0, resolution=8, z_dim=16, w_dim=16,
                                                                              fmap_base=32768, fmap_max=512))}
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(13))
    for name, source in sources.items():
        ckpt = export_via_cli(source, tmp_path / f"{name}.pt")
        # The TF writer's D groups its minibatch std over the whole batch, which rosinality's D cannot: left out.
        assert set(ckpt) == {"g_ema", "latent_avg", "g", *(["d"] if name == "official" else [])}, name
        ours = stylegan.load_network(source)["G_ema"](z, None, truncation_psi=0.8, noise_mode="const")
        assert rel_l2(ours, ref_generator(ckpt["g_ema"], z, 0.8, ckpt["latent_avg"])) < TOLERANCE, name


def test_a_stylegan1_network_is_refused_saying_why(tmp_path):
    from click.testing import CliRunner
    from stylegan.cli import cli
    from tests.formats.tf_writer import stylegan1_snapshot, write_tf_pickle

    source = write_tf_pickle(tmp_path / "v1.pkl", stylegan1_snapshot(0, c_dim=0))
    result = CliRunner().invoke(cli, ["convert", "--source", str(source), "--dest", str(tmp_path / "v1.pt"),
                                      "--to", "rosinality"])
    assert result.exit_code != 0 and "StyleGAN1Generator" in str(result.exception or result.output)
    assert not (tmp_path / "v1.pt").exists()
