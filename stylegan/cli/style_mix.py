"""``stylegan style-mix``: the style-mixing figure of row seeds × column seeds (or projected-W files)."""

from __future__ import annotations

from pathlib import Path

import click
import torch

from stylegan.cli.options import (
    LibraryParsedType,
    batch_option,
    device_option,
    load_generator,
    network_option,
    noise_mode_option,
    outdir_option,
    precision_option,
    prepared_outdir,
    quiet_option,
    threads_option,
)
from stylegan.explore.style_mix import Source, StyleSpec, parse_sources, parse_style_spec, style_mix, write_style_mix


class SourceListType(LibraryParsedType):
    """Seeds and ranges (``1,2,5-9``) mixed with projected-W files (``a/projected_w.npz``)."""

    name = "SEEDS|FILE.npz"

    def parse(self, text: str) -> list[Source]:
        return parse_sources(text)


class StylesType(LibraryParsedType):
    """``--styles``-like lists of w indices and group names, checked for syntax before the network is loaded."""

    name = "STYLES"
    parsed_types = (StyleSpec,)
    fallback_flag = "--styles"

    def parse(self, text: str) -> StyleSpec:
        return parse_style_spec(text)


@click.command("style-mix")
@network_option
@click.option("--rows", "row_seeds", type=SourceListType(), required=True,
              help="Rows: seeds (1,2,5-9) and/or projected-W files (a/projected_w.npz), comma-separated.")
@click.option("--cols", "col_seeds", type=SourceListType(), required=True,
              help="Columns: seeds and/or projected-W .npz files, like --rows.")
@click.option("--styles", type=StylesType(), default="0-6", show_default=True,
              help="w indices the columns supply: a list like 0-3,8 or coarse, middle, fine.")
@click.option("--trunc", "truncation_psi", type=float, default=1, show_default=True, help="Truncation psi.")
@click.option("--class", "class_idx", type=int, help="Class index for a conditional network.")
@noise_mode_option
@outdir_option
@batch_option
@precision_option
@device_option
@threads_option
@quiet_option
def style_mix_command(network: str, row_seeds: list[Source], col_seeds: list[Source], styles: StyleSpec,
                      truncation_psi: float, class_idx: int | None, noise_mode: str, outdir: Path,
                      batch_size: int, device: torch.device, quiet: bool) -> None:
    """Mix styles: each cell is its row's image with the --styles ws taken from its column.

    Writes grid.png (column seeds on top, row seeds on the left) and ROW-COL.png for every cell. Rows and
    columns may be projected-W files (from `stylegan project`) to mix real images; they are used as saved
    (--trunc applies to seeds only) and named after their folder (alice/projected_w.npz → alice).

    \b
    Examples:
      stylegan style-mix --network ffhq.pkl --rows 85,100,75 --cols 55,821,1789 --styles coarse
      stylegan style-mix --network ffhq.pkl --rows alice/projected_w.npz --cols bob/projected_w.npz,55
    """
    with prepared_outdir(outdir):
        G = load_generator(network, device)
        mix = style_mix(G, row_seeds, col_seeds, styles.resolve(G.num_ws), truncation_psi=truncation_psi,
                        class_idx=class_idx, noise_mode=noise_mode, batch_size=batch_size, progress=not quiet)
        paths = write_style_mix(mix, outdir)
    click.echo(f"wrote {len(paths) - 1} images and {paths[-1].name} to {outdir}")
