"""``stylegan convert``: any readable network file → our .safetensors format, or rosinality's .pt layout."""

from __future__ import annotations

from pathlib import Path

import click

import stylegan
from stylegan.atomic import atomic_output
from stylegan.errors import StyleGANError
from stylegan.formats.rosinality_export import rosinality_checkpoint, write_checkpoint

_SUFFIXES = {"safetensors": (".safetensors",), "rosinality": (".pt", ".pth")}


@click.command()
@click.option("--source", required=True, metavar="PATH|URL|NAME",
              help="Network to read (.pkl, .pt, .safetensors, URL, name).")
@click.option("--dest", required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Where to write the converted network (.safetensors, or .pt with --to rosinality).")
@click.option("--to", "target", type=click.Choice(["safetensors", "rosinality"]), default="safetensors",
              show_default=True, help="Output layout: ours, or rosinality/stylegan2-pytorch's checkpoint.")
def convert(source: str, dest: Path, target: str) -> None:
    """Convert a network to a .safetensors file that loads without unpickling, or to rosinality's layout.

    Reads stylegan2-ada-pytorch pickles, TensorFlow pickles (StyleGAN v1, StyleGAN2, StyleGAN2-ADA),
    rosinality .pt checkpoints, .safetensors files, URLs and built-in names; writes G, D and G_ema
    (whichever the source has). With --to rosinality it writes g_ema and latent_avg (plus g and d where
    the source has them), which rosinality's Generator and the tools built on it (pSp, e4e, StyleCLIP)
    load; only unconditional StyleGAN2 skip generators fit that layout.

    \b
    Examples:
      stylegan convert --source ffhq.pkl --dest ffhq.safetensors
      stylegan convert --source karras2019stylegan-ffhq-1024x1024.pkl --dest stylegan1-ffhq.safetensors
      stylegan convert --source ffhq.pkl --dest ffhq-rosinality.pt --to rosinality
    """
    if dest.suffix.lower() not in _SUFFIXES[target]:
        wanted = " or ".join(_SUFFIXES[target])
        raise StyleGANError(f"--dest {dest} does not end in {wanted}", f"name the output FILE{_SUFFIXES[target][0]} "
                                                                      f"for --to {target}")
    if dest.parent.exists() and not dest.parent.is_dir():
        raise StyleGANError(f"cannot write {dest}: {dest.parent} is not a directory", "choose another --dest")
    # Load (and check the network fits the layout) first: a bad --source must not leave a freshly created,
    # empty --dest folder behind.
    net = stylegan.load_network(source)
    export = rosinality_checkpoint(net, source) if target == "rosinality" else None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StyleGANError(f"cannot create {dest.parent}: {e.strerror or e}", "choose another --dest") from None
    # A read-only folder or a full disk: one error line, no temporary file, an older --dest untouched.
    with atomic_output(dest, "--dest", "choose a writable --dest") as tmp:
        if export is None:
            stylegan.save_network(net, tmp)
        else:
            write_checkpoint(export, tmp)
    if export is None:
        kept = ", ".join(k for k in ("G", "D", "G_ema") if k in net)
        click.echo(f"wrote {dest} ({net.get('format', 'network')}: {kept})")
        return
    click.echo(f"wrote {dest} (rosinality layout: {', '.join(export.checkpoint)}; Generator(size={export.size}, "
               f"style_dim={export.style_dim}, n_mlp={export.n_mlp}, channel_multiplier={export.channel_multiplier}))")
    for note in export.notes:
        click.echo(f"note: {note}")
