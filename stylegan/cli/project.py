"""``stylegan project``: find the ws that reproduce target images (the StyleGAN2 projector)."""

from __future__ import annotations

from pathlib import Path

import click
import torch

from stylegan.cli.options import (
    IndexListType,
    batch_option,
    device_option,
    load_generator,
    network_option,
    outdir_option,
    precision_option,
    prepared_outdir,
    quiet_option,
    threads_option,
)
from stylegan.explore.project_jobs import OutputSettings, check_request, run_jobs, seed_jobs, target_jobs
from stylegan.explore.projection_files import VIDEO_FPS
from stylegan.explore.projector import DEFAULT_SEED, ProjectorConfig
from stylegan.explore.targets import list_targets


def detector_dir_option(f):
    return click.option("--detector-dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
                        help="Folder holding vgg16.pt (offline use; default: $STYLEGAN_DETECTOR_DIR, "
                             "else download).")(f)


def projector_options(f):
    """--num-steps, --seed, --w-plus, --class: shared by project and mass-project."""
    for option in reversed([
        click.option("--num-steps", type=click.IntRange(min=1), default=1000, show_default=True,
                     help="Optimisation steps."),
        click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True,
                     help="Seed of the initial noise maps and the w noise."),
        click.option("--w-plus", is_flag=True, help="Optimise one w per layer (W+) instead of one w for all."),
        click.option("--class", "class_idx", type=int,
                     help="Class index for a conditional network (default: each target's class label from the "
                          "dataset.json of its folder or ZIP)."),
    ]):
        f = option(f)
    return f


def load_vgg16(detector_dir: Path | None, device: torch.device, quiet: bool):
    from stylegan.metrics.detectors import load_detector

    return load_detector("vgg16", detector_dir=detector_dir, device=device, progress=not quiet)


@click.command("project")
@network_option
@click.option("--target", type=click.Path(path_type=Path), metavar="IMAGE|DIR|ZIP",
              help="Image to project, or a folder / dataset ZIP of images (one output folder each).")
@click.option("--max-images", type=click.IntRange(min=1), metavar="N",
              help="Project only the first N images of a --target folder or ZIP (in name order).")
@click.option("--seeds", type=IndexListType(seeds=True), help="Project the network's own images for these seeds.")
@click.option("--trunc", "truncation_psi", type=float, default=1, show_default=True,
              help="Truncation psi of the --seeds targets.")
@projector_options
@click.option("--save-video/--no-save-video", default=True, show_default=True,
              help="Write proj.mp4: the target beside the projection, one frame per step.")
@click.option("--fps", type=float, default=VIDEO_FPS, show_default=True, help="Frame rate of proj.mp4.")
@click.option("--num-snapshots", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also save N evenly spaced steps as steps/stepNNNN.png.")
@detector_dir_option
@outdir_option
@batch_option
@precision_option
@device_option
@threads_option
@quiet_option
def project_command(network: str, target: Path | None, max_images: int | None, seeds: list[int] | None,
                    truncation_psi: float, num_steps: int,
                    seed: int, w_plus: bool, class_idx: int | None, save_video: bool, fps: float, num_snapshots: int,
                    detector_dir: Path | None, outdir: Path, batch_size: int, device: torch.device,
                    quiet: bool) -> None:
    """Project images into the network's latent space (W, or W+ with --w-plus).

    Writes target.png, proj.png, projected_w.npz (use it with `generate --projected-w` or `style-mix
    --rows`), proj.mp4 and projection.json into --outdir; a folder or ZIP of targets, or --seeds, gets one
    subfolder each, and a rerun skips the subfolders already projected with the same options.

    \b
    Examples:
      stylegan project --network ffhq.pkl --target me.jpg --outdir out/me
      stylegan project --network ffhq.pkl --target photos/ --num-steps 500 --no-save-video --outdir out
      stylegan project --network ffhq.pkl --seeds 1-3 --outdir out/self
      stylegan project --network cifar10.pkl --target cifar10.zip --max-images 8 --outdir out/cifar
    """
    output = OutputSettings(save_video=save_video, fps=fps, num_snapshots=num_snapshots)
    check_request(target, seeds, max_images, truncation_psi, output)
    targets, many = list_targets(target, limit=max_images) if target is not None else ([], True)
    record = {"network": network, "num_steps": num_steps, "seed": seed, "w_plus": w_plus, "trunc": truncation_psi,
              "save_video": save_video, "num_snapshots": num_snapshots}
    with prepared_outdir(outdir):
        G = load_generator(network, device)
        if seeds is not None:
            jobs = seed_jobs(G, seeds, outdir, truncation_psi=truncation_psi, class_idx=class_idx,
                             batch_size=batch_size)
        else:
            jobs = target_jobs(G, targets, outdir, many=many, class_idx=class_idx)
        vgg = load_vgg16(detector_dir, device, quiet)
        config = ProjectorConfig(num_steps=num_steps, w_plus=w_plus)
        count = run_jobs(G, jobs, vgg, record=record, resume=many, config=config, seed=seed, output=output,
                         batch_size=batch_size, progress=not quiet, log=click.echo)
    if count > 1:
        click.echo(f"projected {count} targets into {outdir}")
