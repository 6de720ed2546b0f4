"""``stylegan train``: StyleGAN2-ADA training, or StyleGAN (v1) with progressive growing (``--cfg stylegan1``),
on one process or many (`torchrun ... -m stylegan train`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import click
from click.core import ParameterSource

from stylegan.cli.options import grid_option, prepared_outdir, threads_option
from stylegan.devices import DEVICE_FORMS, resolve_device
from stylegan.errors import StyleGANError
from stylegan.limits import quote
from stylegan.process_group import Launch, launch_from_env
from stylegan.training.augment import AUGPIPE_PRESETS
from stylegan.training.config import AUG_MODES, CONFIG_NAMES, TrainingOptions, resolve_options, resume_options
from stylegan.training.progressive import parse_per_resolution


def _per_resolution(what: str, integer: bool = False):
    """A click callback: ``4:512,8:256`` → {4: 512, 8: 256} (None when the option is not given)."""
    def convert(ctx: click.Context, param: click.Parameter, value: Optional[str]):
        return None if value is None else parse_per_resolution(value, what, integer=integer)
    return convert


def _lod_kimg(ctx: click.Context, param: click.Parameter, value: Optional[str]):
    """``--lod-kimg TRAIN,TRANSITION`` → (training kimg, transition kimg)."""
    if value is None:
        return None
    parts = value.split(",")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) != 2 or not all(0 <= n < 1e9 for n in numbers):
        raise StyleGANError(f"--lod-kimg {quote(value)} is not two kimg counts", "give the kimg of training, then of "
                            "fade-in, per resolution, e.g. --lod-kimg 600,600")
    return tuple(numbers)


def parse_metrics(text: str) -> list[str]:
    """``--metrics fid50k_full,kid50k_full`` → names; ``none`` (or empty) → []."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    return [] if names in ([], ["none"]) else names


def metrics_hook(names: list[str], detector_dir: Optional[Path], launch: Launch):
    """The function computing ``names`` at each snapshot (see stylegan.training.run.train), or None.

    Metric names and feature detectors are checked here, before any training starts.
    """
    if not names:
        return None
    from stylegan.metrics import training_hook
    return training_hook(names, detector_dir=detector_dir, progress=launch.is_main)


@click.command()
@click.option("--outdir", required=True, type=click.Path(path_type=Path), help="Where run folders are made.")
@click.option("--data", type=click.Path(path_type=Path), help="Dataset ZIP or folder (from `stylegan dataset`).")
@click.option("--cfg", type=click.Choice(CONFIG_NAMES), default="auto", show_default=True, help="Base config.")
@click.option("--gamma", type=float, help="R1 weight (overrides the config).")
@click.option("--mode-seeking", type=float, metavar="W",
              help="Weight of a mode-seeking term (Mao et al. 2019) against a conditional G drawing one image "
                   "per class; 0 = off (default).")
@click.option("--batch", type=click.IntRange(min=1), help="Total batch size over all processes.")
@click.option("--batch-gpu", type=click.IntRange(min=1),
              help="Samples per forward pass (accumulate below batch/processes).")
@click.option("--kimg", type=click.FloatRange(min=0, min_open=True),
              help="Training length in thousands of real images shown.")
@click.option("--tick", "kimg_per_tick", type=click.FloatRange(min=0, min_open=True),
              help="kimg between progress lines [default: 4; stylegan1: per resolution, see --tick-per-res].")
@click.option("--snap", type=click.IntRange(min=0),
              help="Ticks between snapshots and image grids (0: only at the end) [default: 50; stylegan1: 10].")
@click.option("--mirror", is_flag=True, default=None, help="Add x-flipped copies of the dataset.")
@click.option("--cond", is_flag=True, default=None, help="Train a class-conditional network from the dataset's labels.")
@click.option("--subset", "--max-size", "max_size", type=click.IntRange(min=1),
              help="Train on a seeded subset of N images.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--glr", type=click.FloatRange(min=0, min_open=True), help="G learning rate.")
@click.option("--dlr", type=click.FloatRange(min=0, min_open=True), help="D learning rate.")
@click.option("--cbase", type=click.IntRange(min=1), help="Channel base (channels = min(cbase/res, cmax)).")
@click.option("--cmax", type=click.IntRange(min=1), help="Max channels per layer.")
@click.option("--map", type=click.IntRange(min=1), help="Mapping network depth.")
@click.option("--zdim", "z_dim", type=click.IntRange(min=1), help="Latent Z size (default 512).")
@click.option("--wdim", "w_dim", type=click.IntRange(min=1), help="Latent W size (default 512).")
@click.option("--mbstd-group", type=click.IntRange(min=1), help="Minibatch-std group size.")
@click.option("--fp32", is_flag=True, default=None, help="No fp16 layers and no conv clamp.")
@click.option("--nhwc", is_flag=True, default=None, help="fp16 layers in channels-last memory format (CUDA).")
@click.option("--nobench", "cudnn_benchmark", flag_value=False, default=None,
              help="No cuDNN autotuning at the start (on by default).")
@click.option("--allow-tf32", is_flag=True, default=None,
              help="Let Ampere-and-newer GPUs use TF32 in float32 matmuls and convolutions (off by default).")
@click.option("--aug", type=click.Choice(AUG_MODES),
              help="Adaptive, no, or fixed-probability augmentation [default: ada; stylegan1: noaug].")
@click.option("--p", type=click.FloatRange(0, 1),
              help="Augmentation probability (initial for ada, constant for fixed).")
@click.option("--target", "ada_target", type=float, help="ADA target for E[sign(D(real))] (default 0.6).")
@click.option("--augpipe", type=click.Choice(list(AUGPIPE_PRESETS)), default="bgc", show_default=True,
              help="Augmentations used.")
@click.option("--start-res", type=click.IntRange(min=4),
              help="stylegan1: resolution growing starts at (a power of two) [default: 8].")
@click.option("--lod-kimg", callback=_lod_kimg, metavar="TRAIN,FADE",
              help="stylegan1: kimg of training, then of fading in the next resolution, per resolution "
                   "[default: 600,600].")
@click.option("--batch-per-res", callback=_per_resolution("--batch-per-res", integer=True), metavar="RES:N,...",
              help="stylegan1: minibatch per resolution, e.g. 4:128,8:128,16:128,32:64 (--batch: the others) "
                   "[default: the official preset for the process count].")
@click.option("--glr-per-res", callback=_per_resolution("--glr-per-res"), metavar="RES:LR,...",
              help="stylegan1: G learning rate per resolution (--glr: the others) [default: "
                   "128:0.0015,256:0.002,512:0.003,1024:0.003].")
@click.option("--dlr-per-res", callback=_per_resolution("--dlr-per-res"), metavar="RES:LR,...",
              help="stylegan1: D learning rate per resolution (--dlr: the others) [default: as G].")
@click.option("--tick-per-res", callback=_per_resolution("--tick-per-res"), metavar="RES:KIMG,...",
              help="stylegan1: kimg per tick per resolution (--tick: the others) [default: 4:160,8:140,...,"
                   "1024:20].")
@click.option("--reset-adam/--no-reset-adam", "reset_opt_for_new_lod", default=None,
              help="stylegan1: fresh Adam state whenever a fade-in starts or ends [default: on].")
@click.option("--resume", help="Network PATH|URL to start from (transfer learning), or 'latest' to continue "
                               "the newest snapshot in --outdir.")
@click.option("--freezed", type=click.IntRange(min=0), help="Freeze the first N layers of D (transfer learning).")
@click.option("--metrics", default="none", show_default=True,
              help="Metrics at each snapshot, comma-separated (e.g. fid50k_full,kid50k_full@5000), or none.")
@click.option("--detector-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Folder with inception-2015-12-05.pt / vgg16.pt for --metrics (default: download, or "
                   "$STYLEGAN_DETECTOR_DIR).")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True, help="Data loader processes.")
@click.option("--device", default="auto", show_default=True, help=f"{DEVICE_FORMS}; under torchrun "
              "auto and cuda give each process its own GPU.")
@threads_option
@grid_option("Images per row x rows of the snapshot grids (default, or --grid alone: as the official code, from "
             "the resolution).")
@click.option("--desc", metavar="STR", help="Words to add to the run folder's name (e.g. --desc gamma2-try).")
@click.option("--dry-run", is_flag=True, help="Print the resolved options and exit.")
@click.option("--quiet", is_flag=True, default=None, help="No progress lines on the terminal (log.txt still has them).")
def train(outdir: Path, data: Optional[Path], cfg: str, dry_run: bool, metrics: str, detector_dir: Optional[Path], **overrides) -> None:
    """Train a StyleGAN2-ADA network, or with --cfg stylegan1 a StyleGAN (v1) one with progressive growing;
    several processes: `torchrun --nproc_per_node=N -m stylegan train ...`.

    \b
    Example:
      stylegan dataset --source sklearn-digits --dest digits.zip --resolution 32x32
      stylegan train --data digits.zip --outdir runs --cond --kimg 500 --batch 16
      # Ctrl-C writes a snapshot; the same command plus --resume latest continues it.
    """
    grid = overrides.get("grid")
    overrides["grid"] = None if grid in (None, "auto") else list(grid)
    lod_kimg = overrides.pop("lod_kimg", None)
    if lod_kimg is not None:
        overrides["lod_training_kimg"], overrides["lod_transition_kimg"] = lod_kimg
    launch = launch_from_env()
    opts = _options(click.get_current_context(), outdir, data, cfg, parse_metrics(metrics), launch.world, overrides)
    if dry_run:
        click.echo(json.dumps(opts.to_dict(), indent=2))
        return
    resolve_device(opts.device, launch.local_rank)  # a bad --device fails here, before --outdir is touched
    metrics_fn = metrics_hook(list(opts.metrics), detector_dir, launch)  # a resumed run keeps its metrics
    from stylegan.training.run import train as run_training
    if not launch.is_main:
        run_training(opts, metrics_fn=metrics_fn)
        return
    # Training runs inside the context: a run that fails before writing anything (a dataset without
    # labels for --cond, a --resume network that does not fit) removes the --outdir it just created.
    with prepared_outdir(outdir):
        run_training(opts, metrics_fn=metrics_fn)


# Overrides that do not carry their option's name.
_PARAMETER_OF = {"lod_training_kimg": "lod_kimg", "lod_transition_kimg": "lod_kimg"}


def _options(ctx: click.Context, outdir: Path, data: Optional[Path], cfg: str, metric_names: list[str], gpus: int,
             overrides: dict) -> TrainingOptions:
    """The run's options: a new run's from the base config and the given flags, or, for ``--resume latest``,
    the continued run's own options with only the flags typed on this command line applied on top."""
    from stylegan.data import ImageDataset
    from stylegan.training.run import snapshot_to_continue
    from stylegan.training.snapshot import read_snapshot_options

    given = {k: v for k, v in overrides.items() if v is not None}
    if given.get("resume") == "latest":
        latest = snapshot_to_continue(outdir)
        typed = {k: v for k, v in given.items()
                 if ctx.get_parameter_source(_PARAMETER_OF.get(k, k)) == ParameterSource.COMMANDLINE and k != "resume"}
        if ctx.get_parameter_source("cfg") == ParameterSource.COMMANDLINE:
            typed["cfg"] = cfg  # refused when it changes the network family
        if data is not None:
            typed["data"] = str(data)
        if ctx.get_parameter_source("metrics") == ParameterSource.COMMANDLINE:
            typed["metrics"] = metric_names
        return resume_options(read_snapshot_options(latest), gpus=gpus, outdir=str(outdir), **typed)
    if data is None:
        raise StyleGANError("--data is missing", "give the dataset ZIP or folder made by `stylegan dataset`")
    if not data.exists():
        raise StyleGANError(f"dataset {data} does not exist",
                            "make one with `stylegan dataset --source ... --dest ...`")
    probe = ImageDataset(str(data), use_labels=bool(given.get("cond")))
    return resolve_options(str(data), str(outdir), probe.resolution, cfg=cfg, gpus=gpus, metrics=metric_names,
                           **given)
