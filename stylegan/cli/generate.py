"""``stylegan generate``: images for seeds (one file each, or a grid) or for projected W."""

from __future__ import annotations

from pathlib import Path

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
    outdir_option,
    precision_option,
    prepared_outdir,
    quiet_option,
    threads_option,
)
from stylegan.errors import StyleGANError
from stylegan.explore.images import check_grid
from stylegan.explore.generate import (
    apply_input_transform,
    parse_translate,
    projected_file_name,
    resolve_grid,
    seed_file_name,
    write_images,
)
from stylegan.explore.labels import check_class
from stylegan.explore.render import images_from_seeds, images_from_ws
from stylegan.explore.ws_files import check_ws_shape, read_projected_w


@click.command()
@network_option
@click.option("--seeds", type=IndexListType(seeds=True), help="Seeds, e.g. 0-7 or 1,2,5-10.")
@click.option("--trunc", "truncation_psi", type=float, default=1, show_default=True, help="Truncation psi.")
@click.option("--trunc-cutoff", "truncation_cutoff", type=click.IntRange(min=0),
              help="Truncate only the first N ws (default: all; StyleGAN v1 networks: their own, 8).")
@click.option("--class", "class_idx", type=int, help="Class index for a conditional network.")
@noise_mode_option
@outdir_option
@grid_option("Write one grid.png of all images instead of one file each: --grid alone for a near-square grid, "
             "--grid WxH for W columns and H rows.")
@click.option("--grid-w", type=click.IntRange(min=1), help="Grid columns (implies --grid).")
@click.option("--grid-h", type=click.IntRange(min=1), help="Grid rows (implies --grid).")
@click.option("--projected-w", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.npz",
              help="Render the ws saved by the projector instead of seeds.")
@click.option("--translate", metavar="X,Y", help="StyleGAN3 only: shift the image by X,Y (input coordinates, "
              "as the official gen_images.py), e.g. 0.3,1.")
@click.option("--rotate", type=float, metavar="DEG", help="StyleGAN3 only: rotate the image by DEG degrees.")
@batch_option
@precision_option
@device_option
@threads_option
@quiet_option
def generate(network: str, seeds: list[int] | None, truncation_psi: float, truncation_cutoff: int | None,
             class_idx: int | None, noise_mode: str, outdir: Path, grid: str | tuple[int, int] | None, grid_w: int | None,
             grid_h: int | None, projected_w: Path | None, translate: str | None, rotate: float | None,
             batch_size: int, device: torch.device, quiet: bool) -> None:
    """Generate images from seeds (seed0042.png ...) or from projected W (proj00.png ...).

    \b
    Examples:
      stylegan generate --network ffhq.pkl --seeds 0-7 --trunc 0.7
      stylegan generate --network cifar10.pkl --seeds 0-35 --class 1 --grid
      stylegan generate --seeds 0-31 --class 3 --grid 8x4
      stylegan generate --network ffhq.pkl --projected-w projected_w.npz
      stylegan generate --network stylegan3-r-ffhq.pkl --seeds 0-3 --translate 0.2,0 --rotate 10
    """
    if (seeds is None) == (projected_w is None):
        raise StyleGANError("give exactly one of --seeds and --projected-w",
                            "e.g. --seeds 0-7, or --projected-w projected_w.npz")
    if projected_w is not None and (class_idx is not None or truncation_cutoff is not None or truncation_psi != 1):
        raise StyleGANError("--class, --trunc and --trunc-cutoff do not apply to --projected-w",
                            "the projected ws already include them; leave these options out")
    shift = parse_translate(translate) if translate is not None else None
    ws = read_projected_w(projected_w) if projected_w is not None else None
    count = len(seeds) if seeds is not None else (ws.shape[0] if ws.ndim == 3 else 1)
    grid_cells = generate_grid(count, grid, grid_w, grid_h)

    with prepared_outdir(outdir):
        G = load_generator(network, device)
        apply_input_transform(G, shift, rotate)
        if grid_cells is not None:  # refuse a grid too large to hold before rendering anything
            check_grid(*grid_cells, G.img_resolution, G.img_resolution)
        if seeds is not None:
            check_class(G, class_idx)
            batches = images_from_seeds(G, seeds, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                                        class_idx=class_idx, noise_mode=noise_mode, batch_size=batch_size,
                                        progress=not quiet)
            names = [seed_file_name(s) for s in seeds]
        else:
            ws = check_ws_shape(ws, G)
            batches = images_from_ws(G, ws, noise_mode=noise_mode, batch_size=batch_size, progress=not quiet)
            names = [projected_file_name(i) for i in range(len(ws))]
        paths = write_images(batches, outdir, names, grid=grid_cells)
    click.echo(f"wrote {paths[0]}" if len(paths) == 1 else f"wrote {len(paths)} images to {outdir}")


def generate_grid(count: int, grid: str | tuple[int, int] | None, grid_w: int | None,
                  grid_h: int | None) -> tuple[int, int] | None:
    """The grid to write ``count`` images into, or None for one file each.

    ``--grid`` alone (``'auto'``) or ``--grid-w``/``--grid-h``: near-square, keeping a given side;
    ``--grid WxH``: exactly that.
    """
    if isinstance(grid, (tuple, list)):
        if grid_w is not None or grid_h is not None:
            raise StyleGANError("--grid WxH and --grid-w/--grid-h both give the grid's size",
                                "use one of them, e.g. --grid 8x4")
        return resolve_grid(count, *grid)
    if grid or grid_w or grid_h:
        return resolve_grid(count, grid_w, grid_h)
    return None
