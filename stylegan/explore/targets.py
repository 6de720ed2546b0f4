"""Target images for the projector: one file, a folder, or a ZIP, each center-cropped and resized.

A target becomes uint8 ``[H, W, C]`` at the network's resolution and channel count, the way the
official projector prepares it: the largest centered square is cut out and resized with Lanczos.
Grayscale targets are repeated to RGB for colour networks, colour targets are turned to luminance for
grayscale networks, and transparency is composited over black.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import PIL.Image

from stylegan.data.archives import open_zip, read_member, read_member_or_fail
from stylegan.data.images import decode_error_text, has_alpha, is_image_name, open_image, to_array
from stylegan.data.labels import LABELS_FILE, Label, parse_labels_json
from stylegan.errors import StyleGANError
from stylegan.explore.labels import CLASS_SETTING
from stylegan.limits import MAX_JSON_BYTES

_HIGH_DEPTH = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


@dataclass
class Target:
    """One target: ``name`` (for its output folder and messages), ``read()`` → a decoded PIL image, and its
    ``label`` from the folder's or ZIP's dataset.json (None when it has none)."""

    name: str
    read: Callable[[], PIL.Image.Image]
    label: Label | None = None
    label_error: StyleGANError | None = None  # a broken dataset.json matters only when a label is needed


def target_class(target: Target, c_dim: int, class_idx: int | None) -> int | None:
    """The class to project ``target`` with: ``class_idx`` when given, else the target's own class label.

    None for an unconditional network; a StyleGANError when a conditional network gets no usable class.
    """
    if class_idx is not None or c_dim == 0:
        return class_idx  # range and fit are checked where the class is used
    label = target.label
    if target.label_error is not None:
        raise target.label_error
    if isinstance(label, int):
        if label >= c_dim:
            raise StyleGANError(f"target {target.name} has class {label} in dataset.json, but the network has "
                                f"{c_dim} classes", f"pick one with {CLASS_SETTING}, 0 to {c_dim - 1}")
        return label
    if label is not None:
        raise StyleGANError(f"target {target.name} has a label vector, not a class", f"pick one with {CLASS_SETTING}")
    raise StyleGANError(f"the network is conditional with {c_dim} classes and target {target.name} has no "
                        "class label in a dataset.json", f"pick one with {CLASS_SETTING}, 0 to {c_dim - 1}")


def prepare_target(image: PIL.Image.Image, resolution: int, channels: int) -> np.ndarray:
    """A decoded image → uint8 ``[resolution, resolution, channels]`` (channels 1 or 3): crop, resize, convert."""
    if image.mode in _HIGH_DEPTH:
        image = PIL.Image.fromarray(to_array(image, 1)[0][:, :, 0], "L")
    if has_alpha(image):
        rgba = image.convert("RGBA")
        image = PIL.Image.alpha_composite(PIL.Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    image = image.convert("L" if channels == 1 else "RGB")
    w, h = image.size
    s = min(w, h)
    image = image.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2))
    image = image.resize((resolution, resolution), PIL.Image.LANCZOS)
    arr = np.array(image, dtype=np.uint8)  # a writable copy
    return np.ascontiguousarray(arr[:, :, None] if arr.ndim == 2 else arr)


def read_target(target: Target, resolution: int, channels: int) -> np.ndarray:
    """Decode and prepare one target; StyleGANError naming it when it is not a readable image."""
    try:
        image = target.read()
    except StyleGANError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoding failure means the file is not a usable image
        reason = decode_error_text(e)
        detail = "" if reason == "not a readable image" else f" ({reason})"  # say it once, not twice
        raise StyleGANError(f"target {target.name} is not a readable image{detail}",
                            "give a PNG or JPEG image, or a folder / ZIP of them") from None
    return prepare_target(image, resolution, channels)


def load_target(path: str | os.PathLike, resolution: int, channels: int) -> np.ndarray:
    """One image file → uint8 ``[resolution, resolution, channels]`` (see :func:`prepare_target`)."""
    path = Path(path)
    return read_target(Target(str(path), lambda: open_image(_read_file(path))), resolution, channels)


def _read_file(path: Path, limit: int | None = None) -> bytes:
    try:
        if limit is not None and path.stat().st_size > limit:
            raise StyleGANError(f"{path} is {path.stat().st_size} bytes, over the {limit}-byte limit",
                                "check the file")
        return path.read_bytes()
    except OSError as e:
        raise StyleGANError(f"cannot read target {path}: {e.strerror or e}", "check the path") from None


def output_name(member: str) -> str:
    """A folder name for a target found at ``member`` (``00000/img00000003.png`` → ``00000_img00000003``)."""
    stem = member.rsplit(".", 1)[0] if "." in member.rsplit("/", 1)[-1] else member
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem.replace("/", "_")).strip("._") or "target"


def list_targets(path: str | os.PathLike, limit: int | None = None) -> tuple[list[Target], bool]:
    """Targets in ``path`` and whether it holds many: an image file (one), or a folder / ``.zip`` of images.

    Folders are searched recursively; folders and ZIPs are read in sorted name order; ``limit`` keeps the first N.
    """
    path = Path(path)
    if path.is_dir():
        names = sorted((p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()),
                       key=lambda n: n.split("/"))
        names = [n for n in names if is_image_name(n)][:limit]
        meta_file = path / LABELS_FILE
        labels, error = _labels(lambda: _read_file(meta_file, MAX_JSON_BYTES), meta_file) \
            if meta_file.is_file() else ({}, None)
        targets = [Target(n, lambda n=n: open_image(_read_file(path / n)), labels.get(n), error) for n in names]
        kind = "folder"
    elif path.is_file() and path.suffix.lower() == ".zip":
        fix = "give an image, a folder or a dataset ZIP"
        with open_zip(path, str(path), fix) as z:  # refuses damaged ZIPs and repeated member names
            names = sorted(n for n in z.namelist() if is_image_name(n))[:limit]
            where = f"{path}:{LABELS_FILE}"
            labels, error = _labels(lambda: read_member_or_fail(z, LABELS_FILE, where, fix, MAX_JSON_BYTES), where) \
                if LABELS_FILE in z.namelist() else ({}, None)
        targets = [Target(n, lambda n=n: open_image(_zip_member(path, n)), labels.get(n), error) for n in names]
        kind = "ZIP"
    elif path.is_file():
        return [Target(path.name, lambda: open_image(_read_file(path)))], False
    else:
        raise StyleGANError(f"target {path} does not exist", "give an image file, a folder of images or a dataset ZIP")
    if not targets:
        raise StyleGANError(f"{kind} {path} holds no images", "give a folder or ZIP with PNG/JPEG files")
    return targets, True


def _labels(read: Callable[[], bytes], where) -> tuple[dict[str, Label], StyleGANError | None]:
    """``{image name: label}`` from a dataset.json that ``read()`` returns (empty for ``"labels": null``),
    or the reason it is unusable."""
    try:
        return parse_labels_json(read(), str(where)) or {}, None
    except StyleGANError as e:
        return {}, e


def _zip_member(path: Path, name: str) -> bytes:
    """A member's bytes within the limits (DamagedMember, a ValueError, otherwise: the target is unreadable)."""
    with open_zip(path, str(path), "give an image, a folder or a dataset ZIP") as z:
        return read_member(z, name)


def unique_names(names: list[str]) -> list[str]:
    """Output folder names, made unique by appending ``-2``, ``-3``… to repeats."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def iter_prepared(targets: list[Target], resolution: int, channels: int) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, uint8 [H, W, C])`` for each target in turn."""
    for target in targets:
        yield target.name, read_target(target, resolution, channels)
