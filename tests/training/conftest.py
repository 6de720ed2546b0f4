import copy

import pytest

from stylegan.data import ImageDataset, convert_dataset
from stylegan.networks import build_network
from stylegan.training.config import resolve_options
from stylegan.training.run import network_kwargs


@pytest.fixture(scope="session")
def digits16(tmp_path_factory):
    """scikit-learn's real handwritten digits at 16×16, with labels (made once per test session)."""
    path = tmp_path_factory.mktemp("data") / "digits16.zip"
    convert_dataset("sklearn-digits", path, resolution=(16, 16), max_images=256, progress=False)
    return path


def tiny_options(data, outdir, **overrides):
    base = dict(batch=4, kimg=0.016, kimg_per_tick=0.008, cbase=256, cmax=16, map=2, z_dim=16, w_dim=16,
                aug="noaug", workers=0, snap=1, mbstd_group=2, grid=[4, 2], quiet=True)
    base.update(overrides)
    return resolve_options(str(data), str(outdir), 16, cfg="auto", **base)


def tiny_networks(opts, dataset, seed=0):
    import torch
    torch.manual_seed(seed)
    c_dim = dataset.label_dim if opts.cond else 0
    G_kwargs, D_kwargs = network_kwargs(opts, dataset.resolution, dataset.num_channels, c_dim)
    G = build_network("Generator", G_kwargs)
    D = build_network("Discriminator", D_kwargs)
    return G, D, copy.deepcopy(G)


def open_dataset(opts):
    return ImageDataset(opts.data, use_labels=opts.cond, xflip=opts.mirror)


TINY_CLI = ["--batch", "4", "--cbase", "256", "--cmax", "16", "--map", "2", "--zdim", "16", "--wdim", "16",
            "--mbstd-group", "2", "--workers", "0", "--quiet", "--grid", "4x2"]


def run_cli(*args):
    """``stylegan <args>`` in this process → (exit code, stderr text captured by click)."""
    import contextlib
    import io

    from stylegan.cli import main
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, err.getvalue()


def run_dirs(outdir):
    return sorted(p for p in outdir.iterdir() if p.is_dir())


@pytest.fixture(scope="session")
def unlabeled16(tmp_path_factory):
    """A small unlabeled 16×16 dataset (the digits with their labels left out)."""
    import zipfile
    src = tmp_path_factory.mktemp("data") / "digits-src.zip"
    convert_dataset("sklearn-digits", src, resolution=(16, 16), max_images=32, progress=False)
    path = src.with_name("unlabeled16.zip")
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w") as zout:
        for name in zin.namelist():
            if name != "dataset.json":
                zout.writestr(name, zin.read(name))
    return path
