"""The dataset tool: any supported source → a dataset in the official layout (ZIP or folder).

Images are written as uncompressed PNGs named ``00000/img00000000.png`` (1000 per folder) in source
order, with ``dataset.json`` holding ``{"labels": [[name, label], ...]}`` or ``{"labels": null}``.
Every output image must have the same square power-of-two size and channel count.

Same as NVIDIA's dataset_tool.py: file selection and order, naming, dataset.json format, uncompressed
PNGs in an uncompressed ZIP, the --resolution/--transform rules (outputs are byte-identical for RGB
and grayscale images), MNIST padded from 28x28 to 32x32, CIFAR-10 training batches only.
Deliberate differences:
- images are numbered consecutively over the images written, so images left out (center-crop-wide,
  --skip-bad) leave no gaps in the numbering; --max-images counts images written, not read;
- unreadable images stop the run with a count of them (the official tool crashes, or for LMDB prints
  and skips); --skip-bad leaves them out;
- palette, 16-bit, CMYK and alpha images are converted (alpha dropped with a note, or kept with
  --channels 4) instead of being refused; grayscale works with the crop transforms;
- a dataset.json that misses labels for some images is an error (the official tool silently writes
  an unlabeled dataset); labels are checked for one consistent kind;
- an existing --dest ZIP is replaced only with --overwrite, and only once the new one is complete;
  a failed run leaves nothing behind;
- CIFAR-10 batches are unpickled with an allow-list (numpy arrays only); MNIST idx headers are checked
  and any MNIST-style idx file (t10k, Fashion-MNIST, uncompressed) is accepted; LSUN images are
  decoded with Pillow rather than OpenCV; macOS metadata files (._*, __MACOSX/) are ignored;
- the smallest resolution accepted is 4x4 (the smallest StyleGAN2 block).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import PIL.Image
from tqdm import tqdm

from stylegan.data.images import decode_error_text, encode_png, to_array
from stylegan.data.labels import LABELS_FILE, Label, check_same_kind, cut, normalize_label
from stylegan.data.sources import SOURCE, Decoded, Source, open_source
from stylegan.data.transforms import RESOLUTION, TRANSFORM, Transform, check_square_power_of_two
from stylegan.data.writer import DatasetWriter, archive_name
from stylegan.errors import StyleGANError, setting

CHANNEL_CHOICES = (1, 3, 4)
MAX_LISTED_BAD = 3
CHANNELS = setting("channels")


@dataclass
class ConvertReport:
    """What :func:`convert_dataset` wrote, and anything the user should know about."""

    dest: str
    source_kind: str
    count: int = 0
    resolution: int = 0
    channels: int = 0
    label_kind: Optional[str] = None        # None (unlabeled), 'classes' or 'vectors'
    label_dim: int = 0                      # number of classes, or vector length
    bad: list[tuple[str, str]] = field(default_factory=list)   # (name, reason) of skipped corrupt files
    too_small: int = 0                      # left out by center-crop-wide
    alpha_dropped: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        labels = {None: "no labels", "classes": f"{self.label_dim} classes",
                  "vectors": f"label vectors of {self.label_dim}"}[self.label_kind]
        plural = "s" if self.channels != 1 else ""
        images = "image" if self.count == 1 else "images"
        return (f"wrote {self.count} {images} ({self.resolution}x{self.resolution}, {self.channels} channel{plural}, "
                f"{labels}) to {self.dest}")


def _as_array(decoded: Decoded, channels: Optional[int]) -> tuple[np.ndarray, bool]:
    """A decoded source item → uint8 HWC (C in 1, 3, 4), and whether alpha was dropped."""
    if isinstance(decoded, PIL.Image.Image):
        return to_array(decoded, channels)
    arr = np.asarray(decoded, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, np.newaxis]
    if channels is not None and arr.shape[2] != channels:
        return to_array(PIL.Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr), channels)
    return arr, False


def _bad_error(bad: list[tuple[str, str]], seen: int) -> StyleGANError:
    listed = "; ".join(f"{cut(name)}: {reason}" for name, reason in bad[:MAX_LISTED_BAD])
    more = f"; and {len(bad) - MAX_LISTED_BAD} more" if len(bad) > MAX_LISTED_BAD else ""
    return StyleGANError(f"{len(bad)} of {seen} images could not be read ({listed}{more})",
                         f"repair or delete them, or turn on {setting('skip_bad')} to leave them out")


class _Shape:
    """The size and channel count of the first output image, which every later one must match."""

    def __init__(self) -> None:
        self.first: Optional[tuple[str, int, int, int]] = None  # name, width, height, channels

    def check(self, name: str, arr: np.ndarray) -> None:
        h, w, c = arr.shape
        if self.first is None:
            check_square_power_of_two(
                w, h, f"{name} (after any transform and resize)",
                f"give a power-of-two {RESOLUTION} and, for non-square images, set {TRANSFORM} to center-crop")
            self.first = (name, w, h, c)
            return
        first_name, fw, fh, fc = self.first
        if (w, h) != (fw, fh):
            raise StyleGANError(f"{name} is {w}x{h} but {first_name} is {fw}x{fh}; all images must be the same size",
                                f"give {RESOLUTION} (and set {TRANSFORM} to center-crop for non-square images)")
        if c != fc:
            raise StyleGANError(f"{name} has {c} channel(s) but {first_name} has {fc}; all images must match",
                                f"set {CHANNELS} to 3 (or 1) to convert every image to RGB (or grayscale)")


def convert_dataset(source: str | os.PathLike, dest: str | os.PathLike, *, max_images: Optional[int] = None,
                    transform: Optional[str] = None, resolution: Optional[tuple[int, int]] = None,
                    resize_filter: str = "lanczos", channels: Optional[int] = None, skip_bad: bool = False,
                    overwrite: bool = False, progress: bool = True) -> ConvertReport:
    """Convert ``source`` into a dataset at ``dest`` (``*.zip`` or a folder); returns a :class:`ConvertReport`.

    ``max_images`` limits the images written; ``transform``/``resolution``/``resize_filter`` follow the
    official tool; ``channels`` None keeps grayscale and RGB (dropping alpha), 1/3/4 forces L/RGB/RGBA;
    ``skip_bad`` leaves corrupt files out instead of failing. Raises StyleGANError on any problem,
    in which case nothing is written.
    """
    if max_images is not None and max_images < 1:
        raise StyleGANError(f"{setting('max_images')} is {max_images}, which leaves nothing to write",
                            "give at least 1, or leave it out (None) for all")
    if channels is not None and channels not in CHANNEL_CHOICES:
        raise StyleGANError(f"{CHANNELS} is {channels}, which is not supported",
                            "use 1 (grayscale), 3 (RGB) or 4 (RGBA), or leave it out (None)")
    xform = Transform(transform, resolution, resize_filter)
    src = open_source(source)
    report = ConvertReport(dest=os.fspath(dest), source_kind=src.kind, notes=list(src.notes))
    total = src.count if max_images is None else min(src.count, max_images)

    with DatasetWriter(dest, overwrite=overwrite) as writer:
        labels = _write_images(src, writer, xform, channels, skip_bad, max_images, total, progress, report)
        writer.write(LABELS_FILE, json.dumps({"labels": labels}))
        writer.commit()

    if report.alpha_dropped:
        report.notes.append(f"{report.alpha_dropped} image(s) had an alpha channel, which was dropped "
                            f"(set {CHANNELS} to 4 to keep it)")
    if report.too_small:
        report.notes.append(f"{report.too_small} image(s) narrower than {xform.resolution[0]} pixels or too short "
                            "for the band were left out by center-crop-wide")
    if report.bad:
        listed = ", ".join(cut(name) for name, _ in report.bad[:MAX_LISTED_BAD])
        more = ", ..." if len(report.bad) > MAX_LISTED_BAD else ""
        report.notes.append(f"skipped {len(report.bad)} unreadable image(s): {listed}{more}")
    return report


def _write_images(src: Source, writer: DatasetWriter, xform: Transform, channels: Optional[int], skip_bad: bool,
                  max_images: Optional[int], total: int, progress: bool, report: ConvertReport) -> Optional[list]:
    """The loop of :func:`convert_dataset`; returns the dataset.json labels (None when unlabeled)."""
    shape = _Shape()
    labels: list[list] = []
    first_label: Optional[tuple[str, Label]] = None
    seen = 0
    unwritten = 0     # readable images passed over once aborting
    aborting = False  # a bad file was found without --skip-bad: from then on only count bad files
    bar = tqdm(total=total, unit="img", disable=not progress, desc="dataset", leave=False)
    try:
        for item in src:
            budget_used = report.count + unwritten + (0 if skip_bad else len(report.bad))
            if max_images is not None and budget_used >= max_images:
                break
            seen += 1
            bar.update(1)
            try:
                arr, alpha_dropped = _as_array(item.read(), channels)
            except StyleGANError:
                raise
            except Exception as e:  # noqa: BLE001 - any decoding failure makes this one file bad
                report.bad.append((item.name, decode_error_text(e)))
                aborting = aborting or not skip_bad
                continue
            if aborting:
                unwritten += 1
                continue
            out = xform(arr)
            if out is None:
                report.too_small += 1
                continue
            shape.check(item.name, out)
            name = archive_name(report.count)
            if src.labeled:
                label = normalize_label(item.label, item.name, src.path)
                if first_label is None:
                    first_label = (item.name, label)
                check_same_kind(first_label[1], first_label[0], label, item.name, src.path)
                labels.append([name, label])
            writer.write(name, encode_png(out))
            report.count += 1
            report.alpha_dropped += alpha_dropped
    finally:
        bar.close()
    if aborting:
        raise _bad_error(report.bad, seen)
    if report.count == 0:
        why = "all were left out by center-crop-wide" if report.too_small else "none could be read"
        raise StyleGANError(f"{SOURCE} {src.path}: no images to write ({why})",
                            f"use a smaller {RESOLUTION} or another {TRANSFORM}" if report.too_small
                            else "check the source images")
    _, w, _, c = shape.first
    report.resolution, report.channels = w, c
    if first_label is not None:
        if isinstance(first_label[1], int):
            report.label_kind, report.label_dim = "classes", max(label for _, label in labels) + 1
        else:
            report.label_kind, report.label_dim = "vectors", len(first_label[1])
    return labels if src.labeled else None
