"""Official stylegan3 pickles (stylegan3-t, stylegan3-r): snapshots and G-only files load, round-trip through
our safetensors files, and every command runs on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import stylegan
from stylegan.cli import main
from stylegan.networks.stylegan2 import Discriminator
from stylegan.networks.stylegan3 import StyleGAN3Generator
from tests.detector_standins import write_detectors
from tests.formats.official_writer import AugmentPipe
from tests.formats.sg3_writer import randomized_sg3, tiny_sg3_kwargs, write_sg3_pickle


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def training_snapshot(config: str) -> dict:
    """What the stylegan3 training loop pickles: G, D (the StyleGAN2 discriminator), G_ema, augment_pipe."""
    kwargs = tiny_sg3_kwargs(config)
    torch.manual_seed(0)
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=64, channel_max=8,
                      block_kwargs={"freeze_layers": 0}, mapping_kwargs={}, epilogue_kwargs={"mbstd_group_size": 4})
    return {"G": randomized_sg3(kwargs, seed=1), "D": D, "G_ema": randomized_sg3(kwargs, seed=2),
            "augment_pipe": AugmentPipe(xflip=1), "training_set_kwargs": {"resolution": 16}}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sg3")
    out = {}
    for config in "tr":
        out[f"{config}-snapshot"] = write_sg3_pickle(d / f"{config}-snapshot.pkl", training_snapshot(config))
        out[f"{config}-bare"] = write_sg3_pickle(d / f"{config}-bare.pkl", randomized_sg3(tiny_sg3_kwargs(config)))
    return out


@pytest.mark.parametrize("config", ["t", "r"])
def test_training_snapshot_loads_every_entry(files, config):
    written = training_snapshot(config)
    net = stylegan.load_network(files[f"{config}-snapshot"])
    assert {"G", "D", "G_ema", "augment_pipe"} <= set(net)
    assert isinstance(net["G_ema"], StyleGAN3Generator) and isinstance(net["D"], Discriminator)
    assert net["format"] == "stylegan3 pickle"
    for key in ("G", "G_ema", "D"):
        for name, t in written[key].state_dict().items():
            assert torch.equal(net[key].state_dict()[name], t), (key, name)
    assert net["augment_pipe"].init_kwargs["xflip"] == 1


@pytest.mark.parametrize("config", ["t", "r"])
def test_bare_generator_pickle_and_safetensors_round_trip(files, tmp_path, config):
    net = stylegan.load_network(files[f"{config}-bare"])
    assert set(net) >= {"G_ema"} and "D" not in net
    G = net["G_ema"]
    stylegan.save_network(net, tmp_path / "g.safetensors")
    again = stylegan.load_network(tmp_path / "g.safetensors")["G_ema"]
    assert isinstance(again, StyleGAN3Generator) and again.init_kwargs == G.init_kwargs
    z = torch.randn([2, G.z_dim])
    assert torch.equal(again(z, None, truncation_psi=0.7), G(z, None, truncation_psi=0.7))


def test_info_and_convert(capsys, files, tmp_path):
    code, out, err = run(capsys, "info", "--network", files["r-snapshot"])
    assert code == 0, err
    lines = out.splitlines()
    assert "family:      StyleGAN3" in lines and any(line.startswith("format:") and "stylegan3 pickle" in line
                                                       for line in lines), out
    code, _, err = run(capsys, "convert", "--source", files["r-snapshot"], "--dest", tmp_path / "r.safetensors")
    assert code == 0, err
    assert isinstance(stylegan.load_network(tmp_path / "r.safetensors")["G_ema"], StyleGAN3Generator)


def test_generate_png_equals_the_network_output_with_translate_and_rotate(capsys, files, tmp_path):
    code, _, err = run(capsys, "generate", "--network", files["t-bare"], "--seeds", "5", "--trunc", "0.7",
                       "--translate", "0.1,-0.05", "--rotate", "12", "--outdir", tmp_path / "moved", "--quiet")
    assert code == 0, err
    code, _, err = run(capsys, "generate", "--network", files["t-bare"], "--seeds", "5", "--trunc", "0.7",
                       "--outdir", tmp_path / "plain", "--quiet")
    assert code == 0, err
    G = stylegan.load_network(files["t-bare"])["G_ema"]
    stylegan.networks.stylegan3.set_input_transform(G, (0.1, -0.05), 12)
    z = torch.from_numpy(np.random.RandomState(5).randn(1, G.z_dim)).float()
    img = G(z, None, truncation_psi=0.7)
    expected = (img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    moved = np.asarray(Image.open(tmp_path / "moved" / "seed0005.png"))
    assert np.array_equal(moved, expected)
    assert not np.array_equal(moved, np.asarray(Image.open(tmp_path / "plain" / "seed0005.png")))


def test_translate_on_a_stylegan2_network_is_one_error(capsys, tmp_path):
    code, _, err = run(capsys, "generate", "--seeds", "0", "--translate", "0.1,0", "--outdir", tmp_path / "o")
    assert code == 2 and err.count("error:") == 1 and "StyleGAN3" in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_style_mix_video_and_project(capsys, files, tmp_path):
    net = files["r-bare"]
    code, _, err = run(capsys, "style-mix", "--network", net, "--rows", "1,2", "--cols", "3", "--styles", "0-3",
                       "--outdir", tmp_path / "mix", "--quiet")
    assert code == 0, err
    assert any((tmp_path / "mix").glob("*.png"))
    code, _, err = run(capsys, "lerp-video", "--network", net, "--seeds", "0-1", "--grid", "2x1", "--duration-sec",
                       "0.2", "--fps", "10", "--output", tmp_path / "walk.mp4", "--quiet")
    assert code == 0, err
    assert (tmp_path / "walk.mp4").stat().st_size > 0
    detectors = write_detectors(tmp_path / "detectors")
    code, _, err = run(capsys, "project", "--network", net, "--seeds", "3", "--num-steps", "3", "--no-save-video",
                       "--detector-dir", detectors, "--outdir", tmp_path / "proj", "--quiet")
    assert code == 0, err
    assert any((tmp_path / "proj").rglob("projected_w.npz"))
