"""Network definitions: StyleGAN2 generator/discriminator, their TF-conditioning variants, StyleGAN (v1)."""

from __future__ import annotations

import torch
from torch import nn

from stylegan.errors import StyleGANError
from stylegan.limits import quote
from stylegan.networks.bounds import planned_state
from stylegan.networks.stylegan2 import (
    Discriminator,
    Generator,
    MappingNetwork,
    SynthesisNetwork,
)
from stylegan.networks.label_concat import LabelConcatGenerator, LabelScoreDiscriminator
from stylegan.networks.stylegan1 import StyleGAN1Discriminator, StyleGAN1Generator
from stylegan.networks.stylegan3 import StyleGAN3Generator

# Official class names (the last dotted component) → our module classes.
NETWORK_CLASSES: dict[str, type[nn.Module]] = {
    "Generator": Generator,
    "Discriminator": Discriminator,
    "LabelConcatGenerator": LabelConcatGenerator,  # conditional StyleGAN2 TF generators
    "LabelScoreDiscriminator": LabelScoreDiscriminator,  # conditional StyleGAN2 TF discriminators
    "StyleGAN1Generator": StyleGAN1Generator,
    "StyleGAN1Discriminator": StyleGAN1Discriminator,
    "StyleGAN3Generator": StyleGAN3Generator,  # alias-free generators (official class name: Generator)
}


def network_class(class_name: str) -> tuple[str, type[nn.Module]]:
    """(short name, our class) for an official class name (the last dotted component counts)."""
    if not isinstance(class_name, str):
        raise StyleGANError(f"the network class name is a {type(class_name).__name__} ({quote(class_name)}), "
                            "not a string", "the file is damaged")
    short = class_name.rsplit(".", 1)[-1]
    if short not in NETWORK_CLASSES:
        raise StyleGANError(f"unknown network class {quote(class_name)}",
                            f"supported classes: {', '.join(NETWORK_CLASSES)}")
    return short, NETWORK_CLASSES[short]


def network_shapes(class_name: str, init_kwargs: dict, what: str | None = None) -> tuple[dict[str, torch.Size], int]:
    """(state-dict shapes, total values) of the network ``build_network`` would build, without building it.

    The settings are checked against the limits of ``stylegan.limits`` first and the network is laid out
    on the meta device, so nothing is allocated: every refusal (an argument of the wrong type or over a
    limit, more than MAX_PARAMETERS values) is one StyleGANError naming the argument and the limit.
    """
    short, cls = network_class(class_name)
    return planned_state(cls, short, init_kwargs, what or short)


def build_network(class_name: str, init_kwargs: dict, what: str | None = None) -> nn.Module:
    """Build one of our networks from an official class name and its constructor kwargs.

    The settings are checked first (see :func:`network_shapes`); ``what`` names the network in messages.
    The module comes back freshly initialised (random weights), in eval mode, on the CPU.
    """
    short, cls = network_class(class_name)
    _, total = planned_state(cls, short, init_kwargs, what or short)
    try:
        net = cls(**init_kwargs)
    except (TypeError, ValueError, KeyError, ArithmeticError) as e:
        raise StyleGANError(f"cannot build {what or short} from the stored settings: {quote(str(e), 300)}",
                            "the file comes from a network version this tool does not support") from None
    except (MemoryError, RuntimeError) as e:  # RuntimeError: torch's "can't allocate memory"
        raise StyleGANError(f"cannot build {what or short}: not enough memory for its {total} values "
                            f"({total * 4 / 2**30:.1f} GiB) ({quote(str(e), 200)})",
                            "free some memory, or use a machine with more") from None
    return net.eval()


__all__ = ["Generator", "Discriminator", "MappingNetwork", "SynthesisNetwork", "LabelConcatGenerator",
           "LabelScoreDiscriminator", "StyleGAN1Generator", "StyleGAN1Discriminator", "StyleGAN3Generator", "NETWORK_CLASSES",
           "build_network", "network_class", "network_shapes"]
