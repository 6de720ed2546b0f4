"""``stylegan figures``: the StyleGAN paper's figures (and StyleGAN2's example grids), one PNG each."""

from __future__ import annotations

from pathlib import Path

import click
import torch

from stylegan.cli.options import (
    IndexListType,
    LibraryParsedType,
    batch_option,
    device_option,
    load_generator,
    network_option,
    outdir_option,
    prepared_outdir,
    quiet_option,
    threads_option,
)
from stylegan.explore.figures import (
    FigureSettings,
    draw_figure,
    figure_list,
    parse_mix_styles,
    plan_figures,
    resolve_figure_names,
)
from stylegan.explore.figures_common import Box, check_psi, parse_box, parse_psis
from stylegan.explore.images import save_png
from stylegan.explore.style_mix import StyleSpec


class BoxType(LibraryParsedType):
    name = "X,Y,W,H"
    parsed_types = (Box,)
    fallback_flag = "--crop"

    def parse(self, text: str) -> Box:
        return parse_box(text)


class PsiListType(LibraryParsedType):
    name = "PSIS"
    fallback_flag = "--psis"

    def parse(self, text: str) -> list[float]:
        return parse_psis(text)


class MixStylesType(LibraryParsedType):
    name = "STYLES/STYLES/..."
    fallback_flag = "--mix-styles"

    def parse(self, text: str) -> list[StyleSpec]:
        return parse_mix_styles(text)


class PsiType(LibraryParsedType):
    name = "FLOAT"
    parsed_types = (float, int)
    fallback_flag = "--psi"

    def parse(self, text: str) -> float:
        try:
            value = float(text) if len(str(text)) <= 32 else float("nan")
        except ValueError:
            value = float("nan")
        return check_psi(value, "psi")


def list_figures(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo("\n".join(figure_list()))
        click.echo("groups: paper (the five FFHQ figures, the default), all")
        ctx.exit(0)


@click.command("figures")
@click.argument("figure_names", nargs=-1, metavar="[FIGURE]...")
@click.option("--list", is_flag=True, expose_value=False, is_eager=True, callback=list_figures,
              help="List the figures, one line each, and exit.")
@network_option
@outdir_option
@click.option("--seed", type=click.IntRange(min=0), help="Uncurated grids: the seed of the latent stream.")
@click.option("--seeds", type=IndexListType(seeds=True),
              help="noise-detail, noise-components, truncation, sg2-*: seeds, e.g. 1,2,5-9.")
@click.option("--rows", type=IndexListType(seeds=True), help="style-mixing: row seeds (they receive styles).")
@click.option("--cols", type=IndexListType(seeds=True), help="style-mixing: column seeds (they give styles).")
@click.option("--mix-styles", type=MixStylesType(),
              help="style-mixing: per row, the w indices or groups taken from the columns, separated by / "
                   "(default coarse/coarse/coarse/middle/middle/fine); one entry applies to all rows.")
@click.option("--psi", type=PsiType(), help="Uncurated grids (default 0.7) and sg2-* (preset): truncation psi.")
@click.option("--cutoff", type=click.IntRange(min=0),
              help="Uncurated grids: truncate the first N ws (default: the coarse and middle ones, 8 at 1024²).")
@click.option("--psis", type=PsiListType(), help="truncation: the columns' psi (default 1,0.7,0.5,0,-0.5,-1).")
@click.option("--lods", type=IndexListType(), help="Uncurated grids: one column per entry, images shrunk by 2^lod.")
@click.option("--grid-rows", type=click.IntRange(min=1), help="Uncurated grids: rows of full-size images.")
@click.option("--crop", type=BoxType(), help="Uncurated grids: the part of each image shown, in network pixels.")
@click.option("--detail-crop", type=BoxType(), help="noise-detail: the enlarged part (default scaled from "
                                                    "the paper's 650,180,256,256 at 1024²).")
@click.option("--samples", type=click.IntRange(min=1), help="noise-detail: images per seed (default 100).")
@click.option("--fine-from", type=click.IntRange(min=1),
              help="noise-components: lowest resolution whose noise is 'fine' (default 64, smaller nets scaled).")
@click.option("--class", "class_idx", type=int, help="Class index for a conditional network.")
@batch_option
@device_option
@threads_option
@quiet_option
def figures(figure_names: tuple[str, ...], network: str, outdir: Path, class_idx: int | None, batch_size: int,
            device: torch.device, quiet: bool, **overrides) -> None:
    """Draw the StyleGAN paper's figures from any network (v1 or v2), one PNG per figure.

    FIGURE names a figure (see --list) or a group: 'paper' (the default) or 'all'. Defaults are the official
    figure script's seeds, psi and layer ranges; sizes and crops scale with the network's resolution.
    Options override them for every chosen figure that has that setting.

    \b
    Examples:
      stylegan figures --network ffhq.pkl --outdir figs
      stylegan figures --network default --class 3 truncation --seeds 1-4 --psis 1,0.5,0
      stylegan figures --list
    """
    names = resolve_figure_names(figure_names)  # an unknown name is refused before the network loads
    settings = FigureSettings(**overrides, class_idx=class_idx, batch_size=batch_size, progress=not quiet)
    with prepared_outdir(outdir):
        G = load_generator(network, device)
        plans = plan_figures(G, names, settings)
        for figure, arguments in plans:
            path = save_png(draw_figure(figure, G, arguments, settings), outdir / figure.file_name)
            click.echo(f"wrote {path}")
