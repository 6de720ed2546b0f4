"""``stylegan style-mix``: the style-mixing figure of row seeds × column seeds."""

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
    noise_mode_option,
    outdir_option,
    prepared_outdir,
    quiet_option,
)
from stylegan.errors import StyleGANError
from stylegan.explore.style_mix import check_styles_syntax, parse_styles, style_mix, write_style_mix


@click.command("style-mix")
@network_option
@click.option("--rows", "row_seeds", type=IndexListType(seeds=True), required=True, help="Seeds of the rows.")
@click.option("--cols", "col_seeds", type=IndexListType(seeds=True), required=True, help="Seeds of the columns.")
@click.option("--styles", default="0-6", show_default=True,
              help="w indices the columns supply: a list like 0-3,8 or coarse, middle, fine.")
@click.option("--trunc", "truncation_psi", type=float, default=1, show_default=True, help="Truncation psi.")
@click.option("--class", "class_idx", type=int, help="Class index for a conditional network.")
@noise_mode_option
@outdir_option
@batch_option
@device_option
@quiet_option
def style_mix_command(network: str, row_seeds: list[int], col_seeds: list[int], styles: str,
                      truncation_psi: float, class_idx: int | None, noise_mode: str, outdir: Path,
                      batch_size: int, device: torch.device, quiet: bool) -> None:
    """Mix styles: each cell is its row's image with the --styles ws taken from its column.

    Writes grid.png (column seeds on top, row seeds on the left) and ROW-COL.png for every cell.

    \b
    Example:
      stylegan style-mix --network ffhq.pkl --rows 85,100,75 --cols 55,821,1789 --styles coarse
    """
    try:
        check_styles_syntax(styles)
    except StyleGANError as e:
        raise StyleGANError(f"--styles: {e.what}", e.fix) from None
    with prepared_outdir(outdir):
        G = load_generator(network, device)
        mix = style_mix(G, row_seeds, col_seeds, parse_styles(styles, G.num_ws), truncation_psi=truncation_psi,
                        class_idx=class_idx, noise_mode=noise_mode, batch_size=batch_size, progress=not quiet)
        paths = write_style_mix(mix, outdir)
    click.echo(f"wrote {len(paths) - 1} images and {paths[-1].name} to {outdir}")
