"""Build one of our networks from a class name, constructor kwargs and a flat dict of tensors."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from stylegan.errors import StyleGANError
from stylegan.networks import build_network, network_shapes


def _first(names: list[str], count: int = 3) -> str:
    shown = ", ".join(names[:count])
    return shown + (f" and {len(names) - count} more" if len(names) > count else "")


def build_with_tensors(class_name: str, init_kwargs: dict[str, Any], tensors: dict[str, torch.Tensor],
                       what: str, derived: Callable[[str], bool] | None = None) -> nn.Module:
    """Our module for ``class_name(**init_kwargs)`` holding exactly ``tensors`` (strict names and shapes).

    ``what`` names the network in messages (e.g. "G_ema in ffhq.pkl"). ``derived(name)`` marks buffers a
    file may leave out because the settings determine them (TF files store no resampling filters); those
    keep their built values. The settings are checked against the limits and the tensors against the
    shapes they describe before anything is allocated (a few bytes of settings cannot make us build a
    network the file does not hold). The module comes back on the CPU, in eval mode, with requires_grad
    off. Building does not disturb the caller's random state.
    """
    expected, total = network_shapes(class_name, init_kwargs, what)
    omitted = {k for k in expected if k not in tensors and derived is not None and derived(k)}
    missing = [k for k in expected if k not in tensors and k not in omitted]
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        parts = ([f"missing {_first(missing)}"] if missing else []) + \
                ([f"unexpected {_first(unexpected)}"] if unexpected else [])
        present = sum(t.numel() for t in tensors.values())
        if total > present:
            parts.append(f"its settings describe {total} values, the file holds {present}")
        raise StyleGANError(f"{what} does not match our {class_name}: {'; '.join(parts)}",
                            "the file holds a network variant this tool does not support")
    for name, value in tensors.items():
        if tuple(value.shape) != tuple(expected[name]):
            raise StyleGANError(f"{what} does not match our {class_name}: {name} has shape {list(value.shape)}, "
                                f"expected {list(expected[name])}",
                                "the file is damaged or holds a network variant this tool does not support")
    with torch.random.fork_rng(devices=[]):  # random init is overwritten anyway; keep the caller's RNG
        module = build_network(class_name, init_kwargs, what)
    built = module.state_dict()
    module.load_state_dict({**{k: built[k] for k in omitted}, **tensors}, strict=True)
    return module.cpu().eval().requires_grad_(False)
