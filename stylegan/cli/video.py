"""``stylegan lerp-video`` and ``stylegan style-mix-video``: looping latent-walk videos (MP4 or GIF)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterator

import click
import torch

from stylegan.cli.options import (
    IndexListType,
    batch_option,
    device_option,
    grid_option,
    load_generator,
    network_option,
    noise_mode_option,
    precision_option,
    prepared_outdir,
    quiet_option,
    threads_option,
)
from stylegan.errors import StyleGANError
from stylegan.cli.style_mix import StylesType
from stylegan.explore.generate import resolve_grid
from stylegan.explore.images import check_grid
from stylegan.explore.style_mix import StyleSpec
from stylegan.explore.interpolate import INTERP_KINDS, cell_seeds_from
from stylegan.explore.video import (
    SPACES,
    frame_count,
    lerp_animation,
    render_animation,
    style_mix_animation,
)
from stylegan.explore.video_io import check_video_output, write_video

SEC_PER_KEYFRAME = 3.0  # default pace of a walk: one keyframe every 3 seconds


def output_option(default: str) -> Callable:
    return click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=default,
                        show_default=True, metavar="FILE.mp4|FILE.gif",
                        help="Video file: .mp4 (H.264 via imageio-ffmpeg) or .gif (Pillow).")


def motion_options(f: Callable) -> Callable:
    """--duration-sec, --fps, --interp, --space, --keyframes: how the latents move."""
    for option in reversed([
        click.option("--duration-sec", type=float, default=30, show_default=True, help="Video length in seconds."),
        click.option("--fps", type=float, default=30, show_default=True, help="Frames per second."),
        click.option("--interp", type=click.Choice(INTERP_KINDS), default="cubic", show_default=True,
                     help="Path between keyframes: straight, great circle, or a smooth periodic cubic spline."),
        click.option("--space", type=click.Choice(SPACES), default="z", show_default=True,
                     help="Interpolate latents z (then map) or mapped ws."),
        click.option("--keyframes", type=click.IntRange(min=2),
                     help=f"Keyframes each walk visits before looping (default: one per {SEC_PER_KEYFRAME:g} s)."),
    ]):
        f = option(f)
    return f


def default_keyframes(keyframes: int | None, duration_sec: float) -> int:
    return keyframes if keyframes is not None else max(2, round(duration_sec / SEC_PER_KEYFRAME))


@contextlib.contextmanager
def video_target(output: Path) -> Iterator[Path]:
    """Create the output's folder, check the path and encoder before rendering; clean up on failure."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(prepared_outdir(output.parent))
        except StyleGANError as e:
            raise StyleGANError(f"cannot write video {output}: {e.what}", "choose a writable --output path") from None
        check_video_output(output)
        yield output


def report(output: Path, count: int, fps: float) -> None:
    click.echo(f"wrote {output} ({count} frames at {fps:g} fps)")


@click.command("lerp-video")
@network_option
@click.option("--seeds", type=IndexListType(seeds=True), required=True,
              help="One seed per grid cell (grid near-square), or one seed with --grid WxH (or --grid-w/--grid-h) "
                   "to draw them from.")
@grid_option("Grid size WxH (default, or --grid alone: near-square for the seeds).")
@click.option("--grid-w", type=click.IntRange(min=1), help="Grid columns.")
@click.option("--grid-h", type=click.IntRange(min=1), help="Grid rows.")
@click.option("--trunc", "truncation_psi", type=float, default=1, show_default=True, help="Truncation psi.")
@click.option("--trunc-cutoff", "truncation_cutoff", type=click.IntRange(min=0),
              help="Truncate only the first N ws (default: all).")
@click.option("--class", "class_idx", type=int, help="Class index for a conditional network.")
@motion_options
@noise_mode_option
@output_option("lerp.mp4")
@batch_option
@precision_option
@device_option
@threads_option
@quiet_option
def lerp_video(network: str, seeds: list[int], grid: str | tuple[int, int] | None, grid_w: int | None, grid_h: int | None, truncation_psi: float,
               truncation_cutoff: int | None, class_idx: int | None, duration_sec: float, fps: float, interp: str,
               space: str, keyframes: int | None, noise_mode: str, output: Path, batch_size: int,
               device: torch.device, quiet: bool) -> None:
    """A looping video of a grid of latent walks.

    Each cell starts at its seed's image (as `generate --seeds` makes it) and walks through keyframes drawn
    from that seed, returning to the start so the video loops. Frames are rendered --batch images at a
    time; grids over the limits (16,384 cells, 16384 pixels a side) are refused before rendering.

    \b
    Examples:
      stylegan lerp-video --network ffhq.pkl --seeds 0-8 --trunc 0.7 --output walk.mp4
      stylegan lerp-video --network ffhq.pkl --seeds 42 --grid 4x2 --duration-sec 10 --output walk.gif
    """
    if isinstance(grid, (tuple, list)):
        if grid_w is not None or grid_h is not None:
            raise StyleGANError("--grid WxH and --grid-w/--grid-h both give the grid's size",
                                "use one of them, e.g. --grid 4x2")
        grid_w, grid_h = grid
    if len(seeds) == 1 and (grid_w or grid_h):
        cols, rows = grid_w or 1, grid_h or 1
        check_grid(cols, rows)  # before drawing a seed per cell
        seeds = cell_seeds_from(seeds[0], cols * rows)
    else:
        cols, rows = resolve_grid(len(seeds), grid_w, grid_h)
    num_frames = frame_count(duration_sec, fps)
    with video_target(output):
        G = load_generator(network, device)
        animation = lerp_animation(G, seeds, (cols, rows), num_frames=num_frames,
                                   num_keyframes=default_keyframes(keyframes, duration_sec), kind=interp,
                                   space=space, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                                   class_idx=class_idx)
        frames = render_animation(G, animation, noise_mode=noise_mode, batch_size=batch_size, progress=not quiet,
                                  desc="lerp-video")
        count = write_video(output, frames, fps)
    report(output, count, fps)


@click.command("style-mix-video")
@network_option
@click.option("--row-seed", "row_seeds", type=IndexListType(seeds=True), required=True,
              help="Seed(s) of the still image(s) on the left whose styles get replaced.")
@click.option("--col-seeds", type=IndexListType(seeds=True), required=True,
              help="Seeds of the moving columns that supply the styles.")
@click.option("--col-styles", type=StylesType(), default="0-6", show_default=True,
              help="w indices the columns supply: a list like 0-3,8 or coarse, middle, fine.")
@click.option("--trunc", "truncation_psi", type=float, default=0.7, show_default=True, help="Truncation psi.")
@click.option("--class", "class_idx", type=int, help="Class index for a conditional network.")
@motion_options
@noise_mode_option
@output_option("style-mix.mp4")
@batch_option
@precision_option
@device_option
@threads_option
@quiet_option
def style_mix_video(network: str, row_seeds: list[int], col_seeds: list[int], col_styles: StyleSpec,
                    truncation_psi: float, class_idx: int | None, duration_sec: float, fps: float, interp: str,
                    space: str, keyframes: int | None, noise_mode: str, output: Path, batch_size: int,
                    device: torch.device, quiet: bool) -> None:
    """A looping style-mixing video.

    Top row: the column seeds walking through latent space; left column: the row seed, still; each other
    cell: the row seed with the --col-styles ws taken from its column, frame by frame.

    \b
    Example:
      stylegan style-mix-video --network ffhq.pkl --row-seed 85 --col-seeds 55,821,1789 --col-styles coarse
    """
    num_frames = frame_count(duration_sec, fps)
    with video_target(output):
        G = load_generator(network, device)
        animation = style_mix_animation(G, row_seeds, col_seeds, col_styles.resolve(G.num_ws),
                                        num_frames=num_frames, num_keyframes=default_keyframes(keyframes, duration_sec),
                                        kind=interp, space=space, truncation_psi=truncation_psi, class_idx=class_idx,
                                        noise_mode=noise_mode)
        frames = render_animation(G, animation, noise_mode=noise_mode, batch_size=batch_size, progress=not quiet,
                                  desc="style-mix-video")
        count = write_video(output, frames, fps)
    report(output, count, fps)
