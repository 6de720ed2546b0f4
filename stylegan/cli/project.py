"""``stylegan project``: find the ws that reproduce target images (the StyleGAN2 projector)."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import torch

from stylegan.cli.options import (
    IndexListType,
    batch_option,
    device_option,
    load_generator,
    network_option,
    outdir_option,
    prepared_outdir,
    quiet_option,
)
from stylegan.errors import StyleGANError
from stylegan.explore.generate import check_class, images_from_seeds, seed_file_name
from stylegan.explore.images import to_uint8
from stylegan.explore.projection_files import VIDEO_FPS, is_done, render_projection, write_projection
from stylegan.explore.projector import DEFAULT_SEED, ProjectorConfig, check_projectable, project
from stylegan.explore.quality import image_quality
from stylegan.explore.targets import list_targets, output_name, read_target, target_class, unique_names
from stylegan.explore.video_io import ffmpeg_exe


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
@device_option
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
    if (target is None) == (seeds is None):
        raise StyleGANError("give exactly one of --target and --seeds", "e.g. --target face.png, or --seeds 0-3")
    if max_images is not None and target is None:
        raise StyleGANError("--max-images applies to a --target folder or ZIP", "leave it out with --seeds")
    if target is not None and truncation_psi != 1:
        raise StyleGANError("--trunc applies to --seeds targets only", "leave out --trunc with --target")
    if save_video and not fps > 0:
        raise StyleGANError(f"--fps {fps} is not positive", "give a frame rate above 0")
    targets, many = list_targets(target, limit=max_images) if target is not None else ([], True)
    config = ProjectorConfig(num_steps=num_steps, w_plus=w_plus)
    if save_video:
        try:
            ffmpeg_exe()
        except StyleGANError as e:
            raise StyleGANError(e.what, "leave out the video with --no-save-video, or point $IMAGEIO_FFMPEG_EXE "
                                "at a working ffmpeg") from None

    with prepared_outdir(outdir):
        G = load_generator(network, device)
        check_projectable(G)
        classes = []
        for t in targets:  # every target must decode and have its class before hours of projecting start
            read_target(t, G.img_resolution, G.img_channels)
            classes.append(target_class(t, G.c_dim, class_idx))
            check_class(G, classes[-1])
        vgg = load_vgg16(detector_dir, device, quiet)
        if seeds is not None:
            jobs = [(outdir / seed_file_name(s)[:-4], image, class_idx) for s, image in zip(seeds, (
                img for batch in images_from_seeds(G, seeds, truncation_psi=truncation_psi, class_idx=class_idx,
                                                   batch_size=batch_size, progress=False) for img in to_uint8(batch)))]
        else:
            names = unique_names([output_name(t.name) for t in targets])
            jobs = ((outdir / name if many else outdir, read_target(t, G.img_resolution, G.img_channels), c)
                    for t, name, c in zip(targets, names, classes))
        count = 0
        for folder, image, class_idx in jobs:
            options = {"network": network, "num_steps": num_steps, "seed": seed, "w_plus": w_plus,
                       "class": class_idx, "trunc": truncation_psi, "save_video": save_video,
                       "num_snapshots": num_snapshots}
            if many and is_done(folder, options):  # a rerun of a folder / ZIP / seed list resumes
                click.echo(f"skipped {folder}: already projected with these options")
                continue
            projection = project(G, torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), vgg,
                                 config=config, seed=seed, class_idx=class_idx, progress=not quiet)
            write_projection(G, image, projection, folder, save_video=save_video, num_snapshots=num_snapshots,
                             fps=fps, batch_size=batch_size, progress=not quiet, options=options)
            q = image_quality(image, next(render_projection(G, projection.final_ws)), vgg)
            click.echo(f"wrote {folder}: PSNR {q['psnr']:.2f} dB, LPIPS {q['lpips']:.4f}, "
                       f"final distance {projection.dist[-1]:.4f}")
            count += 1
    if count > 1:
        click.echo(f"projected {count} targets into {outdir}")
