"""Class labels for conditional generators: which ``--class`` a network accepts, and the one-hot ``c`` it takes."""

from __future__ import annotations

import torch
from torch import nn

from stylegan.devices import module_device
from stylegan.errors import StyleGANError, setting

CLASS_SETTING = setting("class_idx", "--class")  # how messages name the class: class_idx (--class)


def check_class(G: nn.Module, class_idx: int | None) -> None:
    """Raise StyleGANError unless ``class_idx`` fits G: required iff G is conditional, in [0, c_dim)."""
    if G.c_dim == 0:
        if class_idx is not None:
            raise StyleGANError(f"{CLASS_SETTING} was given but the network is unconditional",
                                f"leave out {CLASS_SETTING}")
        return
    if class_idx is None:
        raise StyleGANError(f"the network is conditional with {G.c_dim} classes",
                            f"pick one with {CLASS_SETTING}, 0 to {G.c_dim - 1}")
    if not 0 <= class_idx < G.c_dim:
        raise StyleGANError(f"class {class_idx} is out of range for a network with {G.c_dim} classes",
                            f"use {CLASS_SETTING} between 0 and {G.c_dim - 1}")


def class_labels(G: nn.Module, class_idx: int | None, n: int) -> torch.Tensor:
    """One-hot labels ``[n, c_dim]`` on G's device (``[n, 0]`` for an unconditional G)."""
    check_class(G, class_idx)
    c = torch.zeros([n, G.c_dim], device=module_device(G))
    if class_idx is not None:
        c[:, class_idx] = 1
    return c
