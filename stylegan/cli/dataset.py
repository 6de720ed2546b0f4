"""``stylegan dataset``: turn images or a known dataset into a training dataset (ZIP or folder)."""

from __future__ import annotations

from typing import Any, Optional

import click

from stylegan.cli.options import not_empty
from stylegan.data.tool import convert_dataset
from stylegan.data.transforms import RESIZE_FILTERS, TRANSFORMS, parse_resolution


class ResolutionType(click.ParamType):
    """``WxH`` (or ``N`` for NxN) → (width, height); junk raises StyleGANError."""

    name = "WxH"

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        return parse_resolution(str(value))


@click.option("--source", required=True, metavar="PATH", callback=not_empty,
              help="Folder or .zip of images, cifar-10-python.tar.gz, MNIST *-images-idx3-ubyte(.gz), "
                   "LSUN *_lmdb folder, StyleGAN TFRecords folder (*-rNN.tfrecords), "
                   "or sklearn-digits.")
@click.option("--dest", required=True, metavar="PATH", callback=not_empty, help="Output .zip (stored uncompressed) or new/empty folder.")
@click.option("--max-images", type=click.IntRange(min=1), help="Write at most this many images.")
@click.option("--transform", type=click.Choice(TRANSFORMS), help="Crop mode (needs --resolution).")
@click.option("--resolution", type=ResolutionType(), metavar="WxH", help="Output size, e.g. 256x256 (512x384 with center-crop-wide).")
@click.option("--resize-filter", type=click.Choice(list(RESIZE_FILTERS)), default="lanczos", show_default=True,
              help="Filter used when resizing.")
@click.option("--channels", type=click.Choice(["1", "3", "4"]),
              help="Force grayscale (1), RGB (3) or RGBA (4). Default: keep grayscale/RGB, drop alpha.")
@click.option("--skip-bad", is_flag=True, help="Leave unreadable images out instead of stopping.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --dest .zip (only once the new one is complete).")
@click.option("--quiet", is_flag=True, help="Do not show the progress bar.")
def dataset_command(source: str, dest: str, max_images: Optional[int], transform: Optional[str],
                    resolution: Optional[tuple[int, int]], resize_filter: str, channels: Optional[str],
                    skip_bad: bool, overwrite: bool, quiet: bool) -> None:
    """Make a training dataset: PNGs named 00000/img00000000.png plus dataset.json labels.

    The output is the official StyleGAN2-ADA layout, so it also trains with NVIDIA's code. Every image
    must come out square, a power of two, and the same size and channel count as the others.

    \b
    Sources (guessed from --source):
      path/                        all images below path/ (labels from path/dataset.json)
      images.zip                   all images in the ZIP (labels from its dataset.json)
      cifar-10-python.tar.gz       CIFAR-10 training set, 32x32 RGB, 10 classes
      train-images-idx3-ubyte.gz   MNIST (labels from train-labels-idx1-ubyte.gz), padded to 32x32
      bedroom_train_lmdb/          LSUN (needs the lmdb package)
      ffhq/                        StyleGAN (v1) TFRecords: the highest ffhq-rNN.tfrecords, labels from
                                   ffhq-rxx.labels (no TensorFlow needed; both CRCs of every record checked)
      sklearn-digits               scikit-learn's 1,797 8x8 digits, 10 classes (works offline)

    \b
    Examples:
      stylegan dataset --source sklearn-digits --dest digits32.zip --resolution 32x32
      stylegan dataset --source photos/ --dest faces.zip --transform center-crop --resolution 256x256
      stylegan dataset --source cat_lmdb/ --dest cats.zip --transform center-crop-wide --resolution 512x384
    """
    report = convert_dataset(source, dest, max_images=max_images, transform=transform, resolution=resolution,
                             resize_filter=resize_filter, channels=int(channels) if channels else None,
                             skip_bad=skip_bad, overwrite=overwrite, progress=not quiet)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(report.summary())


dataset = click.command(name="dataset")(dataset_command)

__all__ = ["dataset"]
