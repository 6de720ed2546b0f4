"""MMGeneration 0.x / mmagic 1.x StyleGAN2 checkpoints through ``load_network``.

Checkpoints are written by tests/formats/mmgen_writer.py from MMGeneration's names and shapes; pixels are
checked against a float64 re-derivation of MMGeneration's forward pass (mmgen_writer.ref_generator /
ref_discriminator: its keys renamed to rosinality's, run through rosinality_writer's reference).
MMGeneration's generators output BGR: ours must give the same image with its channels
reversed (RGB). Tolerance: float32 against float64 through ~10 layers of sums over ≤ 512·9 terms gives
errors of order 1e-6 relative; MMGeneration's PixelNorm (x / (rms + 1e-6)) differs from ours by ~1e-6
relative as well, so 1e-4 (the project's equivalence bound) holds with a wide margin and still fails on
any real mistake (a wrong gain, a missing swap or noise: errors of order 1e-1).
"""

from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner

import stylegan
from stylegan.cli import cli
from stylegan.errors import StyleGANError
from stylegan.formats.mmgeneration import load_mmgeneration
from stylegan.networks import Discriminator, Generator
from tests.formats.mmgen_writer import (checkpoint, pixel_norm, ref_discriminator, ref_generator, ref_mapping, save,
                                        small_discriminator, small_generator)
from tests.formats.rosinality_writer import rel_l2

TOLERANCE = 1e-4
BGR = [2, 1, 0]


def latents(n: int, dim: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An MMGeneration 0.x training checkpoint: EMA generator, generator, discriminator, meta, optimizer."""
    parts = dict(g_ema=small_generator(0), g=small_generator(5), d=small_discriminator(1))
    meta = {"mmcv_version": "1.3.1", "config": "model = dict(type='StaticUnconditionalGAN', ...)", "iter": 800000,
            "exp_name": "stylegan2_c2_ffhq_256_b4x8_800k.py", "hook_msgs": {"last_ckpt": "iter_800000.pth"}}
    path = save(tmp_path_factory.mktemp("mmgen") / "iter_800000.pth", checkpoint(meta=meta, **parts))
    return parts, path


def test_mmgeneration_checkpoint_gives_its_pixels_in_rgb(trained):
    parts, path = trained
    net = stylegan.load_network(path)
    assert set(k for k, v in net.items() if isinstance(v, torch.nn.Module)) == {"G_ema", "G", "D"}
    z = latents(3, 24)
    for key, state in (("G_ema", parts["g_ema"]), ("G", parts["g"])):
        ours = net[key](z, None, noise_mode="const")
        reference = ref_generator(state, z)  # MMGeneration's output: BGR
        assert rel_l2(ours, reference[:, BGR]) < TOLERANCE, key
        assert rel_l2(ours, reference) > 0.05, key  # the swap is real, not a no-op on these weights
    # Trained by MMGeneration (its meta holds the config): D takes BGR there; ours takes the RGB image.
    img = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    assert rel_l2(net["D"](img, None), ref_discriminator(parts["d"], img[:, BGR])) < TOLERANCE
    assert "generator outputs BGR, swapped to RGB" in net["colour_order"]
    assert "discriminator takes BGR, swapped to RGB" in net["colour_order"]
    assert net["mmgen_meta"] == {"mmcv_version": "1.3.1", "iter": 800000,
                                 "exp_name": "stylegan2_c2_ffhq_256_b4x8_800k.py"}


def test_without_w_avg_truncation_uses_the_mean_of_4096_mapped_latents(trained):
    parts, path = trained
    G = stylegan.load_network(path)["G_ema"]
    sd = {k: v.double() for k, v in parts["g_ema"].items()}
    w_avg = ref_mapping(sd, torch.randn([4096, 24], generator=torch.Generator().manual_seed(0))).mean(0)
    z = latents(2, 24, seed=7)
    ours = G(z, None, truncation_psi=0.6, noise_mode="const")
    assert rel_l2(ours, ref_generator(parts["g_ema"], z, psi=0.6, w_avg=w_avg)[:, BGR]) < TOLERANCE


def test_output_order_states_a_generator_that_outputs_rgb(trained):
    parts, path = trained
    net = load_mmgeneration(path, output_order="rgb")
    z = latents(2, 24)
    assert rel_l2(net["G_ema"](z, None, noise_mode="const"), ref_generator(parts["g_ema"], z)) < TOLERANCE
    assert net["colour_order"].startswith("generator outputs RGB;") and "(output_order given" in net["colour_order"]
    with pytest.raises(StyleGANError, match="output_order is 'yuv'"):
        load_mmgeneration(path, output_order="yuv")


def test_mmagic_conditional_checkpoint_with_w_avg_and_its_ema_wrapper(tmp_path):
    """mmagic 1.x: ``generator_ema.module.`` + ``generator_ema.steps``, a label embedding, z ≠ w size, w_avg."""
    g = small_generator(2, cond_size=5, noise_size=16, w_avg=True)
    net = stylegan.load_network(save(tmp_path / "mmagic.pth", checkpoint(g_ema=g, mmagic=True)))
    G = net["G_ema"]
    assert (G.z_dim, G.c_dim, G.w_dim) == (16, 5, 24) and set(net) >= {"G_ema"} and "D" not in net
    z, c = latents(3, 16), torch.eye(5)[[0, 2, 4]]
    for psi in (1.0, 0.7):
        ours = G(z, c, truncation_psi=psi, noise_mode="const")
        assert rel_l2(ours, ref_generator(g, z, c, psi, g["w_avg"])[:, BGR]) < TOLERANCE, psi
    # mmagic's bgr2rgb=True flips its generator's output: the image we produce.
    assert rel_l2(G(z, c, noise_mode="const"), ref_generator(g, z, c, bgr2rgb=True)) < TOLERANCE


def test_a_checkpoint_with_only_the_generator_gives_it_as_g_ema(tmp_path):
    g = small_generator(3, size=16)
    net = stylegan.load_network(save(tmp_path / "g.pth", checkpoint(g=g)))
    assert net["G_ema"] is net["G"] and "(generator;" in net["format"]
    z = latents(2, 24)
    assert rel_l2(net["G_ema"](z, None, noise_mode="const"), ref_generator(g, z)[:, BGR]) < TOLERANCE


def test_info_names_the_format_and_the_colour_order(trained):
    result = CliRunner().invoke(cli, ["info", "--network", str(trained[1])])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("format:      MMGeneration/mmagic checkpoint (generator_ema; no w_avg")
    assert any(line.startswith("colours:     generator outputs BGR, swapped to RGB") for line in lines)
    assert "mmgen_meta:" in result.output and "colour_order" not in result.output


# --------------------------------------------------------------------------------------------------
# Round trip: an official network converted to MMGeneration's layout the way its conversion did it


def official_to_mmgen(G_state: dict, D_state: dict, num_layers: int, size: int) -> tuple[dict, dict]:
    """NVIDIA's (stylegan2-ada-pytorch) names → MMGeneration's, written from the two codebases' facts.

    Conversions store equalized-lr weights unscaled on both sides (``weight_orig`` = NVIDIA's weight),
    add MMGeneration's leading 1s, turn ``noise_const`` into ``injected_noise_{i}`` buffers, add its blur
    kernels, and reverse the ToRGB output channels: MMGeneration's converted generators output BGR. The
    discriminator keeps NVIDIA's RGB input (MMGeneration's docs: converted discriminators take RGB)."""
    g: dict[str, torch.Tensor] = {}
    for i in range(num_layers):
        g[f"style_mapping.{i + 1}.linear.weight_orig"] = G_state[f"mapping.fc{i}.weight"]
        g[f"style_mapping.{i + 1}.bias"] = G_state[f"mapping.fc{i}.bias"]
    g["constant_input.input"] = G_state["synthesis.b4.const"][None]
    kernel = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = kernel[:, None] * kernel[None, :]
    kernel = kernel / kernel.sum()

    def layer(ours: str, theirs: str, noise_index: int) -> None:
        g[f"{theirs}.conv.weight_orig"] = G_state[f"{ours}.weight"][None]
        g[f"{theirs}.conv.style_modulation.linear.weight_orig"] = G_state[f"{ours}.affine.weight"]
        g[f"{theirs}.conv.style_modulation.bias"] = G_state[f"{ours}.affine.bias"]
        g[f"{theirs}.noise_injector.weight"] = G_state[f"{ours}.noise_strength"].reshape(1)
        g[f"{theirs}.activate.bias"] = G_state[f"{ours}.bias"]
        g[f"injected_noise_{noise_index}"] = G_state[f"{ours}.noise_const"][None, None]

    def torgb(ours: str, theirs: str) -> None:
        g[f"{theirs}.conv.weight_orig"] = G_state[f"{ours}.weight"][BGR][None]
        g[f"{theirs}.conv.style_modulation.linear.weight_orig"] = G_state[f"{ours}.affine.weight"]
        g[f"{theirs}.conv.style_modulation.bias"] = G_state[f"{ours}.affine.bias"]
        g[f"{theirs}.bias"] = G_state[f"{ours}.bias"][BGR].reshape(1, 3, 1, 1)

    layer("synthesis.b4.conv1", "conv1", 0)
    torgb("synthesis.b4.torgb", "to_rgb1")
    for k, res in enumerate(2**i for i in range(3, int(math.log2(size)) + 1)):
        layer(f"synthesis.b{res}.conv0", f"convs.{2 * k}", 2 * k + 1)
        layer(f"synthesis.b{res}.conv1", f"convs.{2 * k + 1}", 2 * k + 2)
        torgb(f"synthesis.b{res}.torgb", f"to_rgbs.{k}")
        g[f"convs.{2 * k}.conv.blur.kernel"] = kernel * 4
        g[f"to_rgbs.{k}.upsample.kernel"] = kernel * 4
    d = {"convs.0.0.conv.weight_orig": D_state[f"b{size}.fromrgb.weight"],
         "convs.0.1.bias": D_state[f"b{size}.fromrgb.bias"]}
    for j, res in enumerate((2**i for i in range(int(math.log2(size)), 2, -1)), start=1):
        d[f"convs.{j}.conv1.0.conv.weight_orig"], d[f"convs.{j}.conv1.1.bias"] = (D_state[f"b{res}.conv0.weight"],
                                                                                  D_state[f"b{res}.conv0.bias"])
        d[f"convs.{j}.conv2.1.conv.weight_orig"], d[f"convs.{j}.conv2.2.bias"] = (D_state[f"b{res}.conv1.weight"],
                                                                                  D_state[f"b{res}.conv1.bias"])
        d[f"convs.{j}.skip.1.conv.weight_orig"] = D_state[f"b{res}.skip.weight"]
        d[f"convs.{j}.conv2.0.kernel"] = d[f"convs.{j}.skip.0.kernel"] = kernel
    d["final_conv.0.conv.weight_orig"], d["final_conv.1.bias"] = D_state["b4.conv.weight"], D_state["b4.conv.bias"]
    d["final_linear.0.linear.weight_orig"], d["final_linear.0.bias"] = D_state["b4.fc.weight"], D_state["b4.fc.bias"]
    d["final_linear.1.linear.weight_orig"], d["final_linear.1.bias"] = D_state["b4.out.weight"], D_state["b4.out.bias"]
    return g, d


def test_an_official_network_converted_to_mmgeneration_layout_gives_the_official_pixels(tmp_path):
    from tests.formats.conftest import perturbed
    from tests.formats.official_writer import write_official_pickle

    torch.manual_seed(4)
    G = perturbed(Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                            mapping_kwargs=dict(num_layers=2),
                            synthesis_kwargs=dict(channel_base=32768, channel_max=512)), 5)
    D = perturbed(Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=32768, channel_max=512), 6)
    official = stylegan.load_network(write_official_pickle(tmp_path / "official.pkl", {"G": G, "D": D, "G_ema": G}))
    g, d = official_to_mmgen(G.state_dict(), D.state_dict(), num_layers=2, size=16)
    g["w_avg"] = G.state_dict()["mapping.w_avg"]  # mmagic keeps it; with it, ψ < 1 is NVIDIA's truncation too
    converted = stylegan.load_network(save(tmp_path / "official-converted.pth", checkpoint(g_ema=g, d=d)))
    z = latents(3, 16)
    for psi in (1.0, 0.5):
        want = official["G_ema"](z, None, truncation_psi=psi, noise_mode="const")
        got = converted["G_ema"](z, None, truncation_psi=psi, noise_mode="const")
        assert rel_l2(got, want.double()) < 1e-6, psi  # the same float32 arithmetic on the same weights
    img = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    assert rel_l2(converted["D"](img, None), official["D"](img, None).double()) < 1e-6
    assert "discriminator takes RGB" in converted["colour_order"]


def test_pixel_norm_of_the_reference_is_mmgenerations(tmp_path):
    """The reference's PixelNorm is MMGeneration's (x / (rms + 1e-6)), not ours: a check on the test itself."""
    x = torch.full((1, 4), 1e-6, dtype=torch.float64)
    assert torch.allclose(pixel_norm(x), torch.full_like(x, 0.5))
