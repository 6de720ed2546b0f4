"""``stylegan train``: StyleGAN2-ADA training on one process or many (`torchrun ... -m stylegan train`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from stylegan.cli.options import prepared_outdir
from stylegan.errors import StyleGANError
from stylegan.training.config import CONFIG_NAMES, resolve_options

AUGPIPES = ("blit", "geom", "color", "filter", "noise", "cutout", "bg", "bgc", "bgcf", "bgcfn", "bgcfnc")


@click.command()
@click.option("--outdir", required=True, type=click.Path(path_type=Path), help="Where run folders are made.")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Dataset ZIP or folder (stylegan dataset).")
@click.option("--cfg", type=click.Choice(CONFIG_NAMES), default="auto", show_default=True, help="Base config.")
@click.option("--gamma", type=float, help="R1 weight (overrides the config).")
@click.option("--batch", type=click.IntRange(min=1), help="Total batch size over all processes.")
@click.option("--batch-gpu", type=click.IntRange(min=1), help="Samples per forward pass (accumulate below batch/processes).")
@click.option("--kimg", type=float, help="Training length in thousands of real images shown.")
@click.option("--tick", "kimg_per_tick", type=float, default=4, show_default=True, help="kimg between progress lines.")
@click.option("--snap", type=click.IntRange(min=0), default=50, show_default=True, help="Ticks between snapshots.")
@click.option("--mirror", is_flag=True, help="Add x-flipped copies of the dataset.")
@click.option("--cond", is_flag=True, help="Train a class-conditional network from the dataset's labels.")
@click.option("--max-size", type=click.IntRange(min=1), help="Use a seeded subset of this many images.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--glr", type=float, help="G learning rate.")
@click.option("--dlr", type=float, help="D learning rate.")
@click.option("--cbase", type=click.IntRange(min=1), help="Channel base (channels = min(cbase/res, cmax)).")
@click.option("--cmax", type=click.IntRange(min=1), help="Max channels per layer.")
@click.option("--map", type=click.IntRange(min=1), help="Mapping network depth.")
@click.option("--zdim", "z_dim", type=click.IntRange(min=1), help="Latent Z size (default 512).")
@click.option("--wdim", "w_dim", type=click.IntRange(min=1), help="Latent W size (default 512).")
@click.option("--mbstd-group", type=click.IntRange(min=1), help="Minibatch-std group size.")
@click.option("--fp32", is_flag=True, help="No fp16 layers and no conv clamp.")
@click.option("--aug", type=click.Choice(["ada", "noaug", "fixed"]), default="ada", show_default=True)
@click.option("--p", type=float, help="Augmentation probability (initial for ada, constant for fixed).")
@click.option("--target", "ada_target", type=float, help="ADA target for E[sign(D(real))] (default 0.6).")
@click.option("--augpipe", type=click.Choice(AUGPIPES), default="bgc", show_default=True)
@click.option("--resume", help="Network PATH|URL to start from (transfer), or 'latest' to continue this outdir.")
@click.option("--freezed", type=click.IntRange(min=0), help="Freeze the first N layers of D.")
@click.option("--metrics", default="none", show_default=True, help="Metrics at each snapshot (none until metrics land).")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True, help="Data loader processes.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--dry-run", is_flag=True, help="Print the resolved options and exit.")
def train(outdir: Path, data: Path, cfg: str, dry_run: bool, metrics: str, **overrides) -> None:
    """Train a StyleGAN2-ADA network (several processes: `torchrun --nproc_per_node=N -m stylegan train ...`).

    \b
    Example:
      stylegan dataset --source sklearn-digits --dest digits.zip --resolution 32x32
      stylegan train --data digits.zip --outdir runs --cond --cfg auto --kimg 500 --batch 16
    """
    from stylegan.data import ImageDataset
    from stylegan.training.run import train as run_training

    if metrics not in ("none", ""):
        raise StyleGANError(f"--metrics {metrics}: metrics during training are not available yet", "use --metrics none")
    if not data.exists():
        raise StyleGANError(f"dataset {data} does not exist", "make one with `stylegan dataset --source ... --dest ...`")
    gpus = int(os.environ.get("WORLD_SIZE", "1"))
    probe = ImageDataset(str(data), use_labels=bool(overrides.get("cond")))
    if overrides.get("p") is None:
        overrides.pop("p")
    opts = resolve_options(str(data), str(outdir), probe.resolution, cfg=cfg, gpus=gpus, **overrides)
    if overrides.get("aug") == "fixed" and opts.p == 0:
        raise StyleGANError("--aug fixed needs a probability", "add e.g. --p 0.2")
    if dry_run:
        click.echo(json.dumps(opts.to_dict(), indent=2))
        return
    if int(os.environ.get("RANK", "0")) == 0:
        with prepared_outdir(outdir):
            pass
    run_training(opts)
