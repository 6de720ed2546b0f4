"""Conditioning as the original TensorFlow StyleGAN and StyleGAN2 code did it (no PyTorch counterpart).

Generator: the label is multiplied by a plain matrix (``LabelConcat``: no equalised-lr gain, no bias),
appended to z, and the joint vector is normalised before the mapping layers. StyleGAN2-ADA instead
normalises z and an embedded label separately, so the two are not interchangeable: for one-hot labels
the joint normalisation mixes the label into z's scale.

Discriminator: the output layer gives one score per label and the label picks (or, for soft labels,
averages) them: ``score = sum(out(x) · c)``. StyleGAN2-ADA instead projects onto a mapped label
embedding, which is normalised, so it cannot reproduce this either.

``LabelConcatGenerator`` and ``LabelScoreDiscriminator`` are our StyleGAN2 networks with just these two
pieces swapped in; they are what conditional StyleGAN2 TensorFlow pickles load as.
"""

from __future__ import annotations

import torch
from torch import nn

from stylegan.networks.init_record import records_init_kwargs
from stylegan.networks.layers import (
    FullyConnectedLayer,
    broadcast_w,
    expect_shape,
    normalize_2nd_moment,
    track_w_avg,
    truncate,
    w_avg_update_wanted,
)
from stylegan.networks.stylegan2 import Discriminator, Generator, discriminator_record, generator_record


class LabelConcat(nn.Module):
    """``c [N, c_dim] → c @ weight.T  [N, out_features]`` with a raw (unit-gain, bias-free) weight."""

    def __init__(self, c_dim: int, out_features: int):
        super().__init__()
        self.c_dim, self.out_features = c_dim, out_features
        self.weight = nn.Parameter(torch.randn([out_features, c_dim]))  # TF stores [c_dim, out]; ours is [out, in]

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return c.to(torch.float32).matmul(self.weight.t())

    def extra_repr(self) -> str:
        return f"c_dim={self.c_dim}, out={self.out_features}"


class LabelConcatMappingNetwork(nn.Module):
    """StyleGAN2-TF mapping: ``[z, c @ W]`` → joint 2nd-moment norm → ``num_layers`` FC layers → ws."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,  # > 0: this network exists only for conditional generators
        w_dim: int,
        num_ws: int,
        num_layers: int = 8,
        layer_features: int | None = None,  # hidden width, None = w_dim
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.995,
    ):
        super().__init__()
        if c_dim <= 0:
            raise ValueError("LabelConcatMappingNetwork needs c_dim > 0")
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        layer_features = w_dim if layer_features is None else layer_features
        self.label_concat = LabelConcat(c_dim, z_dim)  # the embedded label has z's width
        widths = [2 * z_dim] + [layer_features] * (num_layers - 1) + [w_dim]
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(widths[i], widths[i + 1], activation=activation,
                                                        lr_multiplier=lr_multiplier))
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, skip_w_avg_update: bool = False,
                update_emas: bool | None = None) -> torch.Tensor:
        """z ``[N, z_dim]``, c ``[N, c_dim]`` → ws ``[N, num_ws, w_dim]``."""
        expect_shape(z, [None, self.z_dim], "z")
        if c is None:
            raise ValueError(f"this network is conditional: pass c of shape [N, {self.c_dim}]")
        expect_shape(c, [z.shape[0], self.c_dim], "c")
        w = normalize_2nd_moment(torch.cat([z.to(torch.float32), self.label_concat(c)], dim=1))
        for index in range(self.num_layers):
            w = getattr(self, f"fc{index}")(w)
        if w_avg_update_wanted(self.training, skip_w_avg_update, update_emas):
            track_w_avg(self.w_avg, w, self.w_avg_beta)
        return truncate(broadcast_w(w, self.num_ws), self.w_avg, truncation_psi, truncation_cutoff)

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}, label_concat"


class LabelConcatGenerator(Generator):
    """Our StyleGAN2 generator with the StyleGAN2-TF label-concatenating mapping network."""

    class_name = "LabelConcatGenerator"

    @records_init_kwargs(normalize=generator_record)
    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict | None = None, synthesis_kwargs: dict | None = None):
        # Build an unconditional StyleGAN2 generator, then swap in the conditional mapping.
        super().__init__(z_dim=z_dim, c_dim=0, w_dim=w_dim, img_resolution=img_resolution,
                         img_channels=img_channels, synthesis_kwargs=synthesis_kwargs)
        self.c_dim = c_dim
        self.mapping = LabelConcatMappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                                 **(mapping_kwargs or {}))


class LabelScoreDiscriminator(Discriminator):
    """Our StyleGAN2 discriminator whose output has one score per label: ``sum(out(x) · c, dim=1)``."""

    class_name = "LabelScoreDiscriminator"

    @records_init_kwargs(normalize=discriminator_record)
    def __init__(self, c_dim: int, img_resolution: int, img_channels: int, **kwargs):
        if c_dim <= 0:
            raise ValueError("LabelScoreDiscriminator needs c_dim > 0")
        if kwargs.get("cmap_dim") is not None or (kwargs.get("mapping_kwargs") or {}):
            raise ValueError("LabelScoreDiscriminator has no label mapping: cmap_dim and mapping_kwargs must be unset")
        super().__init__(c_dim=0, img_resolution=img_resolution, img_channels=img_channels, **kwargs)
        self.c_dim = c_dim
        self.b4.out = FullyConnectedLayer(self.b4.out.in_features, c_dim)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, force_fp32: bool = False,
                update_emas: bool = False) -> torch.Tensor:
        """img ``[N, C, res, res]``, c ``[N, c_dim]`` → logits ``[N, 1]``."""
        expect_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], "img")
        if c is None:
            raise ValueError(f"this discriminator is conditional: pass c of shape [N, {self.c_dim}]")
        expect_shape(c, [img.shape[0], self.c_dim], "c")
        x, img = self._block_features(img, force_fp32)
        scores = self.b4(x, img, None)  # [N, c_dim]: cmap_dim is 0, so no projection happens there
        return (scores * c.to(scores.dtype)).sum(dim=1, keepdim=True)


__all__ = ["LabelConcat", "LabelConcatMappingNetwork", "LabelConcatGenerator", "LabelScoreDiscriminator"]
