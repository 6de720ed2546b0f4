"""Network definitions: StyleGAN2 generator/discriminator, their TF-conditioning variants, StyleGAN (v1)."""

from __future__ import annotations

from torch import nn

from stylegan.errors import StyleGANError
from stylegan.networks.stylegan2 import (
    Discriminator,
    Generator,
    MappingNetwork,
    SynthesisNetwork,
)
from stylegan.networks.label_concat import LabelConcatGenerator, LabelScoreDiscriminator
from stylegan.networks.stylegan1 import StyleGAN1Discriminator, StyleGAN1Generator

# Official class names (the last dotted component) → our module classes.
NETWORK_CLASSES: dict[str, type[nn.Module]] = {
    "Generator": Generator,
    "Discriminator": Discriminator,
    "LabelConcatGenerator": LabelConcatGenerator,  # conditional StyleGAN2 TF generators
    "LabelScoreDiscriminator": LabelScoreDiscriminator,  # conditional StyleGAN2 TF discriminators
    "StyleGAN1Generator": StyleGAN1Generator,
    "StyleGAN1Discriminator": StyleGAN1Discriminator,
}


def build_network(class_name: str, init_kwargs: dict) -> nn.Module:
    """Build one of our networks from an official class name and its constructor kwargs.

    The module comes back freshly initialised (random weights), in eval mode, on the CPU.
    """
    short = class_name.rsplit(".", 1)[-1]
    if short not in NETWORK_CLASSES:
        raise StyleGANError(f"unknown network class {class_name!r}",
                            f"supported classes: {', '.join(NETWORK_CLASSES)}")
    try:
        net = NETWORK_CLASSES[short](**init_kwargs)
    except (TypeError, ValueError) as e:
        raise StyleGANError(f"cannot build {short} from the stored settings: {e}",
                            "the file comes from a network version this tool does not support") from None
    return net.eval()


__all__ = ["Generator", "Discriminator", "MappingNetwork", "SynthesisNetwork", "LabelConcatGenerator",
           "LabelScoreDiscriminator", "StyleGAN1Generator", "StyleGAN1Discriminator", "NETWORK_CLASSES",
           "build_network"]
