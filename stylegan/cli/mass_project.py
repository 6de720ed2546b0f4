"""``stylegan mass-project``: project a few dataset images on every snapshot of a run and tabulate the scores."""

from __future__ import annotations

from pathlib import Path

import click
import torch

from stylegan.cli.options import (
    device_option,
    load_generator,
    outdir_option,
    prepared_outdir,
    quiet_option,
    threads_option,
)
from stylegan.cli.project import detector_dir_option, load_vgg16, projector_options
from stylegan.explore.mass_project import mass_project
from stylegan.explore.projector import ProjectorConfig


@click.command("mass-project")
@click.option("--networks", type=click.Path(file_okay=False, path_type=Path), required=True, metavar="DIR",
              help="Folder of network snapshots (NAME-<kimg>.pkl or .safetensors), taken in kimg order.")
@click.option("--data", type=click.Path(path_type=Path), required=True, metavar="DIR|ZIP",
              help="Dataset folder or ZIP whose first --num-images images are the targets.")
@click.option("--num-images", type=click.IntRange(min=1), default=8, show_default=True, help="Targets to project.")
@projector_options
@detector_dir_option
@outdir_option
@device_option
@threads_option
@quiet_option
def mass_project_command(networks: Path, data: Path, num_images: int, num_steps: int, seed: int, w_plus: bool,
                         class_idx: int | None, detector_dir: Path | None, outdir: Path, device: torch.device,
                         quiet: bool) -> None:
    """Project every target on every snapshot; tabulate PSNR, SSIM, MSE and LPIPS against kimg.

    Writes metrics.csv (one row per snapshot and image), metrics-mean.csv (per snapshot), metrics.json,
    plot-psnr.png, plot-ssim.png, plot-mse.png, plot-lpips.png, and each pair's target.png, proj.png and
    projected_w.npz under SNAPSHOT/IMAGE/. Rerunning with the same options skips finished pairs.

    \b
    Example:
      stylegan mass-project --networks runs/00000-ffhq --data ffhq.zip --num-images 8 --outdir out/mass
    """
    with prepared_outdir(outdir):
        vgg = load_vgg16(detector_dir, device, quiet)
        state = mass_project(networks, data, num_images, outdir,
                             load_generator=lambda p: load_generator(str(p), device), detector=vgg,
                             config=ProjectorConfig(num_steps=num_steps, w_plus=w_plus), seed=seed,
                             class_idx=class_idx, progress=not quiet, log=lambda text: click.echo(text, err=True))
    click.echo(f"wrote {outdir / 'metrics.csv'} ({len(state['results'])} projections) and plots to {outdir}")
