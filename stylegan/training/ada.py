"""Adaptive discriminator augmentation (ADA): the controller that steers the augmentation probability p.

The evidence is the sign of D's logits on real images. With no overfitting their mean is near 0; the
more D memorises the training set, the nearer it gets to 1. Every ``interval`` minibatches p moves one
fixed step toward keeping that mean at ``target``: up when above it, down when below, never below 0.
The step is sized so that p could travel by 1 in ``kimg`` thousand images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AdaController:
    target: float  # the wanted mean of sign(D(real)), e.g. 0.6
    interval: int  # minibatches between adjustments
    kimg: float  # thousands of images for p to travel by 1
    batch: int  # images per minibatch (all ranks together)

    def due(self, batch_idx: int) -> bool:
        """Whether p moves after minibatch number ``batch_idx`` (counted from 1)."""
        return batch_idx % self.interval == 0

    @property
    def step(self) -> float:
        """How far p moves in one adjustment: the images of one interval over the images of one unit."""
        return (self.batch * self.interval) / (self.kimg * 1000)

    def direction(self, sign_mean: float) -> int:
        """+1, 0 or -1: the side of ``target`` the observed mean of sign(D(real)) lies on."""
        return int(sign_mean > self.target) - int(sign_mean < self.target)

    def adjust_(self, p: torch.Tensor, sign_sum: float, sign_count: int) -> None:
        """Move ``p`` (the augment pipe's buffer, in place) by the evidence of the past interval:
        ``sign_sum`` over ``sign_count`` logits. No evidence leaves p as it is."""
        if sign_count <= 0:
            return
        moved = p + self.direction(sign_sum / sign_count) * self.step
        p.copy_(moved.clamp(min=0))
