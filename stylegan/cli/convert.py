"""``stylegan convert``: any readable network file → our .safetensors format."""

from __future__ import annotations

from pathlib import Path

import click

import stylegan
from stylegan.atomic import atomic_output
from stylegan.errors import StyleGANError


@click.command()
@click.option("--source", required=True, metavar="PATH|URL|NAME", help="Network to read (.pkl, .safetensors, URL, name).")
@click.option("--dest", required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.safetensors",
              help="Where to write the converted network.")
def convert(source: str, dest: Path) -> None:
    """Convert a network to a .safetensors file that loads without unpickling.

    Reads stylegan2-ada-pytorch pickles, TensorFlow pickles (StyleGAN v1, StyleGAN2, StyleGAN2-ADA),
    .safetensors files, URLs and built-in names; writes G, D and G_ema (whichever the source has).

    \b
    Examples:
      stylegan convert --source ffhq.pkl --dest ffhq.safetensors
      stylegan convert --source karras2019stylegan-ffhq-1024x1024.pkl --dest stylegan1-ffhq.safetensors
    """
    if dest.suffix.lower() != ".safetensors":
        raise StyleGANError(f"--dest {dest} does not end in .safetensors", "name the output FILE.safetensors")
    if dest.parent.exists() and not dest.parent.is_dir():
        raise StyleGANError(f"cannot write {dest}: {dest.parent} is not a directory", "choose another --dest")
    # Load first: a bad --source must not leave a freshly created, empty --dest folder behind.
    net = stylegan.load_network(source)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StyleGANError(f"cannot create {dest.parent}: {e.strerror or e}", "choose another --dest") from None
    # A read-only folder or a full disk: one error line, no temporary file, an older --dest untouched.
    with atomic_output(dest, "--dest", "choose a writable --dest") as tmp:
        stylegan.save_network(net, tmp)
    kept = ", ".join(k for k in ("G", "D", "G_ema") if k in net)
    click.echo(f"wrote {dest} ({net.get('format', 'network')}: {kept})")
