"""``dataset.json`` labels: parsing, validation, and the array form the reader hands out.

A label is either an integer class (stored as ``6``, read as a one-hot vector) or a vector of floats
(stored as ``[0.5, 1.0]``, read as is). One dataset uses one kind throughout.
"""

from __future__ import annotations

import math
from typing import Any, Union

import numpy as np

from stylegan.errors import StyleGANError
from stylegan.limits import MAX_CLASSES, MAX_QUOTE, load_json, quote

Label = Union[int, list]

LABELS_FILE = "dataset.json"
JSON_FIX = 'write it as {"labels": [["path/to/img.png", 6], ...]} or {"labels": null}, or remove it'


def normalize_label(value: Any, name: str, where: str) -> Label:
    """One stored label → ``int`` (class index >= 0) or ``list[float]``; anything else is a StyleGANError."""
    if isinstance(value, bool):
        value = None  # true/false are not classes; fall through to the error
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        if value < 0:
            raise StyleGANError(f"{where}: label of {cut(name)} is the negative class {value}",
                                "class labels are integers 0, 1, 2, ...")
        if value >= MAX_CLASSES:
            raise StyleGANError(f"{where}: label of {cut(name)} is class {quote(value, 40)}, over the limit of "
                                f"{MAX_CLASSES} classes", "class labels are integers 0, 1, 2, ... (one per class)")
        return value
    if isinstance(value, float):
        raise StyleGANError(f"{where}: label of {cut(name)} is {value}, which is not a class index",
                            "use integers for classes, or a list such as [0.5] for a continuous label")
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v) for v in value):
        if len(value) > MAX_CLASSES:
            raise StyleGANError(f"{where}: label of {cut(name)} is a vector of {len(value)} numbers, over the "
                                f"limit of {MAX_CLASSES}", "use shorter label vectors")
        return [float(v) for v in value]
    raise StyleGANError(f"{where}: label of {cut(name)} is {quote(value, 40)}",
                        "labels must be class integers or non-empty lists of finite numbers")


def cut(text: str, limit: int = MAX_QUOTE) -> str:
    """A file or member name for an error line, cut to ``limit`` characters (names in files can be megabytes)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _finite(v: int | float) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer too large for a float
        return False


def label_kind(label: Label) -> str:
    return "class label" if isinstance(label, int) else f"label vector of {len(label)}"


def check_same_kind(first: Label, first_name: str, label: Label, name: str, where: str) -> None:
    """Raise unless two labels are of the same kind (both classes, or vectors of one length)."""
    if label_kind(first) != label_kind(label):
        raise StyleGANError(
            f"{where}: labels are inconsistent: {cut(first_name)} has a {label_kind(first)} but "
            f"{cut(name)} has a {label_kind(label)}",
            "use one kind for every image: all class integers, or all lists of the same length")


def parse_labels_json(text: str | bytes, where: str) -> dict[str, Label] | None:
    """The contents of a dataset.json → ``{name: label}`` (names with ``/``), or None for ``"labels": null``.

    Checks the structure, duplicate names and that every label has the same kind.
    """
    meta = load_json(text, where, JSON_FIX)  # bounded in size and depth; any problem is one line
    if not isinstance(meta, dict) or "labels" not in meta:
        raise StyleGANError(f'{where} has no "labels" entry', JSON_FIX)
    entries = meta["labels"]
    if entries is None:
        return None
    if not isinstance(entries, list):
        raise StyleGANError(f'{where}: "labels" must be a list of [name, label] pairs or null', JSON_FIX)
    labels: dict[str, Label] = {}
    first: tuple[str, Label] | None = None
    for entry in entries:
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str)):
            raise StyleGANError(f"{where}: entry {quote(entry, 60)} is not a [name, label] pair", JSON_FIX)
        name = entry[0].replace("\\", "/")
        if name in labels:
            raise StyleGANError(f"{where}: {cut(name)} is labelled twice", "keep one entry per image")
        label = normalize_label(entry[1], name, where)
        if first is None:
            first = (name, label)
        else:
            check_same_kind(first[1], first[0], label, name, where)
        labels[name] = label
    return labels


def match_labels(labels: dict[str, Label], image_names: list[str], where: str) -> list[Label]:
    """The label of every image, in order; a StyleGANError when some images have none.

    Entries naming files that are not images of the dataset are ignored (e.g. images deleted later).
    """
    missing = [n for n in image_names if n not in labels]
    if missing:
        raise StyleGANError(
            f"{where} does not match the images: {len(missing)} of {len(image_names)} image(s) have no label "
            f"(first: {cut(missing[0])})",
            "list every image by its path relative to the dataset root with '/' separators, "
            'or set "labels": null for an unlabeled dataset')
    return [labels[n] for n in image_names]


def labels_to_array(labels: list[Label]) -> np.ndarray:
    """Labels of one kind → int64 ``[N]`` class indices or float32 ``[N, D]`` vectors."""
    if labels and isinstance(labels[0], int):
        return np.asarray(labels, dtype=np.int64)
    return np.asarray(labels, dtype=np.float32).reshape(len(labels), -1)
