"""Values computed from a weight alone (its filter energies, a bf16 copy, its Winograd transform, the layout
a convolution kernel reads), kept between inference calls.

Inference calls the same layers with the same weights again and again. At 256² (paper256, batch 1, one
thread) this weight-only work took a fifth of an fp32 pass: the Winograd transform of each 512×512 kernel
(a [36, 9] by [9, 262144] product that writes 38 MB) and the copies that put kernels in the memory layout
oneDNN reads. Keeping them costs memory: each Winograd-sized kernel's transform is 4× the kernel.
"""

from __future__ import annotations

from typing import Callable, Hashable

import torch
from torch.utils.weak import WeakIdKeyDictionary

from stylegan.precision import keeps_weight_work

# Per weight tensor: {kind: (data pointer, version, value)}. Weak keys: an entry goes with its weight.
_derived = WeakIdKeyDictionary()  # keyed by identity: tensors compare elementwise


def is_differentiated(weight: torch.Tensor) -> bool:
    """Whether autograd will track ``weight`` here (then nothing computed from it may be kept)."""
    return weight.requires_grad and torch.is_grad_enabled()


def weight_derivative(weight: torch.Tensor, kind: Hashable,
                      make: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``make(weight)``, kept between calls while the weight is unchanged and nothing differentiates it,
    inside :func:`stylegan.precision.inference_precision` only (outside it, e.g. in training, always fresh).

    Any in-place change of the weight (optimizer steps, EMA updates, load_state_dict) bumps its version
    and so recomputes the value. ``kind`` tells apart the values kept for one weight.
    """
    if not keeps_weight_work() or is_differentiated(weight):
        return make(weight)
    stamp = (weight.data_ptr(), weight._version)
    entries = _derived.setdefault(weight, {})
    found = entries.get(kind)
    if found is None or found[0] != stamp:
        found = entries[kind] = (stamp, make(weight).detach())
    return found[1]
