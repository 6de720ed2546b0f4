"""Bias, activation, gain and clamp fused into one call, as every StyleGAN2 layer ends."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Activation:
    fn: Callable[[torch.Tensor], torch.Tensor]
    default_gain: float  # keeps the output variance near the input variance


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x: x, 1.0),
    "relu": Activation(F.relu, math.sqrt(2)),
    "lrelu": Activation(lambda x: F.leaky_relu(x, 0.2), math.sqrt(2)),
    "tanh": Activation(torch.tanh, 1.0),
    "sigmoid": Activation(torch.sigmoid, 1.0),
    "elu": Activation(F.elu, 1.0),
    "selu": Activation(F.selu, 1.0),
    "softplus": Activation(F.softplus, 1.0),
    "swish": Activation(lambda x: torch.sigmoid(x) * x, math.sqrt(2)),
}


def bias_act(
    x: torch.Tensor,
    bias: torch.Tensor | None = None,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
    dim: int = 1,
) -> torch.Tensor:
    """``clamp(act(x + bias) * gain, -clamp, clamp)`` with ``bias`` broadcast along ``dim``.

    ``gain`` defaults to the activation's variance-preserving gain (√2 for (l)relu); ``clamp=None``
    disables clamping. The order (bias, activation, gain, clamp) is the official one.
    """
    spec = ACTIVATIONS[act]
    if bias is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + bias.to(x.dtype).reshape(shape)
    x = spec.fn(x)
    gain = spec.default_gain if gain is None else float(gain)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


# Activations with act(a·x) = a·act(x) for a > 0, by their negative slope (None = linear): a positive gain
# may be folded into whatever precedes them.
HOMOGENEOUS = {"linear": None, "relu": 0.0, "lrelu": 0.2}


def homogeneous_act(x: torch.Tensor, act: str, inplace: bool = False) -> torch.Tensor:
    """Apply one of the :data:`HOMOGENEOUS` activations (without gain), in place when asked."""
    slope = HOMOGENEOUS[act]
    if slope == 0.0:
        return torch.relu_(x) if inplace else torch.relu(x)
    if slope is not None:
        return F.leaky_relu(x, slope, inplace=inplace)
    return x

