"""The ``project`` command's work: which images go to which folder, and a resumable run over them.

A request names either target files (an image, or a folder / ZIP of them) or seeds (the network's own
images). Each becomes a :class:`ProjectionJob` with its output folder and class; everything that can be
wrong with the targets (unreadable images, missing classes) is found before the first projection starts.
Each folder records the options it was made with (``projection.json``); for a folder / ZIP / seed list, a
rerun skips the folders already made with the same options.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from stylegan.errors import StyleGANError, setting
from stylegan.explore.generate import seed_file_name
from stylegan.explore.images import to_uint8
from stylegan.explore.labels import check_class
from stylegan.explore.projection_files import NO_VIDEO_FIX, VIDEO_FPS, is_done, render_projection, write_projection
from stylegan.explore.projector import DEFAULT_SEED, ProjectorConfig, check_projectable, project
from stylegan.explore.quality import image_quality
from stylegan.explore.render import images_from_seeds
from stylegan.explore.targets import Target, output_name, read_target, target_class, unique_names
from stylegan.explore.video_io import ffmpeg_exe


TARGET, SEEDS, TRUNC = setting("target"), setting("seeds"), setting("truncation_psi", "--trunc")


@dataclass(frozen=True)
class ProjectionJob:
    """One projection: the folder it writes, how to get its target (uint8 ``[H, W, C]``), its class."""

    folder: Path
    load_target: Callable[[], np.ndarray]
    class_idx: int | None


@dataclass(frozen=True)
class OutputSettings:
    """What the command writes besides ``target.png``, ``proj.png`` and ``projected_w.npz``."""

    save_video: bool = True
    fps: float = VIDEO_FPS
    num_snapshots: int = 0


def check_request(target: Path | None, seeds: Sequence[int] | None, max_images: int | None,
                  truncation_psi: float, output: OutputSettings) -> None:
    """StyleGANError for option combinations that cannot work, before anything is loaded."""
    if (target is None) == (seeds is None):
        raise StyleGANError(f"give exactly one of {TARGET} and {SEEDS}",
                            "a target image, folder or ZIP to project, or seeds whose images to project")
    if max_images is not None and target is None:
        raise StyleGANError(f"{setting('max_images')} applies to a {TARGET} folder or ZIP",
                            f"leave it out with {SEEDS}")
    if target is not None and truncation_psi != 1:
        raise StyleGANError(f"{TRUNC} applies to {SEEDS} targets only", f"leave {TRUNC} at 1 with {TARGET}")
    if output.save_video:
        if not output.fps > 0:
            raise StyleGANError(f"{setting('fps')} is {output.fps}, but must be above 0", "give a frame rate above 0")
        try:
            ffmpeg_exe()
        except StyleGANError as e:
            raise StyleGANError(e.what, NO_VIDEO_FIX) from None


def target_classes(G: nn.Module, targets: Sequence[Target], class_idx: int | None) -> list[int | None]:
    """The class each target is projected with (``class_idx``, else its dataset.json label), all checked against G."""
    classes = [target_class(t, G.c_dim, class_idx) for t in targets]
    for c in classes:
        check_class(G, c)
    return classes


def target_jobs(G: nn.Module, targets: Sequence[Target], outdir: Path, *, many: bool,
                class_idx: int | None = None) -> list[ProjectionJob]:
    """Jobs for target files: one subfolder each when ``many``, else ``outdir`` itself.

    Every target is decoded once here, so a broken file fails the request before hours of projecting.
    """
    check_projectable(G)
    size = (G.img_resolution, G.img_channels)
    for t in targets:
        read_target(t, *size)
    classes = target_classes(G, targets, class_idx)
    names = unique_names([output_name(t.name) for t in targets])
    return [ProjectionJob(outdir / name if many else outdir, lambda t=t: read_target(t, *size), c)
            for t, name, c in zip(targets, names, classes)]


def seed_jobs(G: nn.Module, seeds: Sequence[int], outdir: Path, *, truncation_psi: float = 1,
              class_idx: int | None = None, batch_size: int = 8) -> list[ProjectionJob]:
    """Jobs projecting the network's own images of ``seeds`` (as ``generate`` makes them), one folder per seed."""
    check_projectable(G)
    check_class(G, class_idx)
    batches = images_from_seeds(G, seeds, truncation_psi=truncation_psi, class_idx=class_idx,
                                batch_size=batch_size, progress=False)
    images = [image for batch in batches for image in to_uint8(batch)]
    return [ProjectionJob(outdir / Path(seed_file_name(s)).stem, lambda image=image: image, class_idx)
            for s, image in zip(seeds, images)]


def run_jobs(
    G: nn.Module,
    jobs: Sequence[ProjectionJob],
    detector: torch.jit.ScriptModule,
    *,
    record: dict,
    resume: bool,
    config: ProjectorConfig = ProjectorConfig(),
    seed: int = DEFAULT_SEED,
    output: OutputSettings = OutputSettings(),
    batch_size: int = 8,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> int:
    """Project every job and write its folder; returns how many were projected (not skipped).

    ``record`` (JSON-able: the request's options) is stored in each folder with the job's class; with
    ``resume``, a folder already holding a finished projection with the same record is skipped.
    """
    projected = 0
    for job in jobs:
        options = {**record, "class": job.class_idx}
        if resume and is_done(job.folder, options):
            log(f"skipped {job.folder}: already projected with these options")
            continue
        image = job.load_target()
        result = project(G, torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), detector,
                         config=config, seed=seed, class_idx=job.class_idx, progress=progress)
        write_projection(G, image, result, job.folder, save_video=output.save_video,
                         num_snapshots=output.num_snapshots, fps=output.fps, batch_size=batch_size,
                         progress=progress, options=options)
        scores = image_quality(image, next(render_projection(G, result.final_ws)), detector)
        log(f"wrote {job.folder}: PSNR {scores['psnr']:.2f} dB, LPIPS {scores['lpips']:.4f}, "
            f"final distance {result.dist[-1]:.4f}")
        projected += 1
    return projected
