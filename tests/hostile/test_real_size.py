"""Legitimate files of real size still load, under the same 4 GiB address-space cap as the hostile ones."""

import torch

import stylegan
from stylegan.networks import build_network
from tests.formats.official_writer import write_official_pickle
from tests.hostile.harness import run_stylegan

# The official ffhq.pkl's generator settings (StyleGAN2-ADA, config-f shapes): 30 370 060 parameters.
FFHQ_1024 = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3,
                 mapping_kwargs=dict(num_layers=8),
                 synthesis_kwargs=dict(channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256))


def test_an_ffhq_1024_sized_official_pickle_loads_and_reports(tmp_path):
    torch.manual_seed(0)
    G = build_network("Generator", FFHQ_1024).eval()
    assert sum(p.numel() for p in G.parameters()) == 30_370_060
    path = write_official_pickle(tmp_path / "ffhq-like.pkl", {"G_ema": G, "G": None, "D": None,
                                                              "augment_pipe": None, "training_set_kwargs": None})
    assert path.stat().st_size > 120 * 2**20  # the weights really are in the file

    loaded = stylegan.load_network(str(path))["G_ema"]
    for (name, ours), theirs in zip(loaded.state_dict().items(), G.state_dict().values()):
        assert torch.equal(ours, theirs), name

    # The command line reads it within the hostile tests' 4 GiB address space and one minute.
    result = run_stylegan(["info", "--network", str(path)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1024" in result.stdout
