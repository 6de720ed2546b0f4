"""The steps `train` takes before the loop: building the networks and finding where to start."""

import pytest
import torch

from stylegan.errors import StyleGANError
from stylegan.networks import build_network
from stylegan.training.run import (
    DatasetShape,
    build_networks,
    check_augpipe_fits,
    dataset_shape,
    network_kwargs,
    snapshot_to_continue,
    starting_point,
)
from tests.training.conftest import tiny_options

SHAPE = DatasetShape(resolution=16, channels=1, c_dim=10)


def test_the_moving_average_starts_as_g_and_leaves_the_random_stream_alone(digits16, tmp_path):
    opts = tiny_options(digits16, tmp_path, seed=3, aug="ada", p=0.25)
    nets = build_networks(opts, SHAPE)
    after_build = torch.rand(4)

    # Reference: only G and D drawn from the seed, in that order (the official construction order).
    G_kwargs, D_kwargs = network_kwargs(opts, SHAPE.resolution, SHAPE.channels, SHAPE.c_dim)
    torch.manual_seed(3)
    G = build_network("Generator", G_kwargs)
    D = build_network("Discriminator", D_kwargs)
    assert torch.equal(torch.rand(4), after_build)

    for built, reference in [(nets.G, G), (nets.G_ema, G), (nets.D, D)]:
        got, want = built.state_dict(), reference.state_dict()
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    assert nets.G_ema is not nets.G and not nets.G_ema.training
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(nets.G_ema.parameters(), nets.G.parameters()))
    assert float(nets.augment_pipe.p) == 0.25


def test_no_augment_pipe_without_augmentation(digits16, tmp_path):
    assert build_networks(tiny_options(digits16, tmp_path, aug="noaug"), SHAPE).augment_pipe is None


def test_a_fresh_run_starts_at_zero_in_a_new_folder(digits16, tmp_path):
    opts = tiny_options(digits16, tmp_path)
    start = starting_point(opts, build_networks(opts, SHAPE), SHAPE)
    assert start.progress.cur_nimg == 0 and start.resume_state is None and start.run_dir is None


def test_resume_latest_without_snapshots_names_the_setting(tmp_path):
    (tmp_path / "00000-run").mkdir()
    (tmp_path / "00000-run" / "network-snapshot-12.safetensors").write_text("not six digits")
    for outdir in (tmp_path, tmp_path / "missing"):
        with pytest.raises(StyleGANError, match=r"^resume \(--resume\) 'latest' found no network-snapshot") as e:
            snapshot_to_continue(outdir)
        assert e.value.fix == "start a new run without resume, or point outdir (--outdir) at an earlier run's folder"


def test_dataset_checks_name_the_options_fields(unlabeled16, tmp_path):
    from stylegan.data import ImageDataset
    opts = tiny_options(unlabeled16, tmp_path, cond=True)
    with pytest.raises(StyleGANError) as e:
        dataset_shape(ImageDataset(unlabeled16, use_labels=True), opts)
    assert e.value.what.startswith("cond (--cond) needs labels, but dataset")
    assert "cond (--cond)" in e.value.fix  # the wording around it is the data package's
    with pytest.raises(StyleGANError) as e:
        check_augpipe_fits(tiny_options(unlabeled16, tmp_path, aug="ada", augpipe="bgc"), channels=4)
    assert e.value.fix == ("choose augpipe (--augpipe) bg (or blit/geom) or aug (--aug) noaug, or remake the dataset "
                           "with 3 channels")
