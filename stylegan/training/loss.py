"""The StyleGAN2(-ADA) objective: non-saturating logistic loss with lazy R1 and path-length regularisers.

Training alternates four phases: ``Gmain`` and ``Dmain`` every minibatch, ``Greg`` every
``G_reg_interval`` (4) and ``Dreg`` every ``D_reg_interval`` (16) minibatches; without lazy
regularisation a network runs ``Gboth`` / ``Dboth`` instead. The loop scales a lazy regulariser up by
its interval (``gain``), so that its average strength is unchanged.

The terms, for logits ``D(·)`` and ``softplus(t) = log(1 + eᵗ)``:

* G: ``softplus(-D(G(z)))``, plus the path-length penalty ``pl_weight · (‖J_wᵀ y‖ - a)²`` with ``y`` a
  random image-space direction and ``a`` a running mean of the lengths;
* D: ``softplus(D(G(z))) + softplus(-D(x))``, plus R1 ``γ/2 · ‖∇ₓ D(x)‖²`` on reals.

Random numbers are drawn in the official order (style mixing, synthesis noise, augmentation, path-length
direction), so equal seeds give equal losses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from stylegan.networks.layers import independent_minibatches
from stylegan.networks.stylegan2 import scheduled_device_type


@dataclass
class LossConfig:
    r1_gamma: float = 10.0  # R1 weight γ; the penalty is γ/2 · ||∇D(x)||²
    style_mixing_prob: float = 0.9  # chance of switching to a second latent at a random layer
    pl_weight: float = 2.0  # path-length regulariser weight, 0 = off
    pl_batch_shrink: int = 2  # the PL pass uses batch / shrink samples
    pl_decay: float = 0.01  # decay of the running mean path length
    # Mode-seeking term (Mao et al., CVPR 2019), 0 = off: G's loss gains weight / ratio, where ratio =
    # mean|G(z₁, c) − G(z₂, c)| / mean|z₁ − z₂| over pairs that share a label. It counters a conditional
    # generator that draws one image per class whatever z is.
    mode_seeking: float = 0.0


class _Batch(NamedTuple):
    """One (sub)batch of a phase: real images ``[N, C, H, W]`` in [-1, 1] with labels, and latents with labels."""
    real_img: torch.Tensor | None
    real_c: torch.Tensor | None
    gen_z: torch.Tensor
    gen_c: torch.Tensor


def path_lengths(images: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
    """``[N]`` lengths ``‖J_wᵀ y‖`` of the synthesis Jacobian applied to a random direction ``y``.

    ``y`` is Gaussian, divided by √(H·W) so that the expected length does not depend on the resolution;
    the squared length is averaged over the ``num_ws`` rows of ``ws [N, num_ws, w_dim]``. The result stays
    differentiable (double backward) so that the penalty can be trained.
    """
    height, width = images.shape[2], images.shape[3]
    direction = torch.randn_like(images) / math.sqrt(height * width)
    (pulled_back,) = torch.autograd.grad((images * direction).sum(), ws, create_graph=True)
    return pulled_back.square().sum(2).mean(1).sqrt()


def _paired_labels(c: torch.Tensor) -> torch.Tensor:
    """``c`` with its second half's labels replaced by the first half's: sample i and i + N//2 share a label
    (an odd last sample keeps its own)."""
    half = c.shape[0] // 2
    return torch.cat([c[:half], c[:half], c[2 * half:]])


def _image_to_latent_distance(images: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mean absolute image difference over mean absolute latent difference, between samples i and i + N//2."""
    half = z.shape[0] // 2
    apart = (images[:half] - images[half:2 * half]).abs().mean()
    return apart / (z[:half] - z[half:2 * half]).abs().mean()


def _backward(terms: list[torch.Tensor], gain: float, anchor: torch.Tensor | None = None) -> None:
    """Accumulate the gradients of ``gain · Σ mean(term)``.

    ``anchor`` is the network output a regulariser was computed from. A regulariser depends on the
    network only through derivatives of that output, so some parameters (an output bias, for one) have
    no path to it and would keep ``grad = None``. Seeding a zero gradient at the anchor gives every
    parameter that produced the output an exact zero instead, which the official training also does:
    Adam skips a parameter without a gradient, but for a zero one still decays its second moment and
    counts the step, and gradient synchronisation (our all-reduce, or DDP) sees the same set of
    parameters in every phase.
    """
    total = sum(term.mean() for term in terms) * gain
    if anchor is None:
        total.backward()
    else:
        torch.autograd.backward([total, anchor], [None, torch.zeros_like(anchor)])


class StyleGAN2Loss:
    """The objective of :mod:`stylegan.training.loop`; ``accumulate_gradients`` runs one phase on one
    (sub)batch, and ``pop_stats`` hands over what was measured since the last call."""

    def __init__(self, G: nn.Module, D: nn.Module, augment_pipe: nn.Module | None = None,
                 config: LossConfig | None = None):
        self.G, self.D, self.augment_pipe = G, D, augment_pipe
        self.config = config or LossConfig()
        self.pl_mean = torch.zeros([], device=next(G.parameters()).device)  # running mean path length
        # Progressive growing: the ws the active layers read (the loop sets it from lod); None = all.
        self.active_ws: int | None = None
        self.stats: dict[str, list[torch.Tensor]] = {}

    # --- the phases ------------------------------------------------------------------------------

    def accumulate_gradients(self, phase: str, real_img: torch.Tensor | None, real_c: torch.Tensor | None,
                             gen_z: torch.Tensor, gen_c: torch.Tensor, gain: float) -> None:
        """Run ``phase`` (one of :data:`PHASES`) on one (sub)batch and add its gradients to the parameters."""
        step = _PHASE_STEPS.get(phase)
        if step is None:
            raise ValueError(f"unknown training phase {phase!r}")
        step(self, _Batch(real_img, real_c, gen_z, gen_c), gain)

    def _g_main(self, batch: _Batch, gain: float) -> None:
        seeking = self.config.mode_seeking > 0 and batch.gen_z.shape[0] >= 2
        labels = _paired_labels(batch.gen_c) if seeking else batch.gen_c
        images, _ = self.generate(batch.gen_z, labels)
        logits = self.discriminate(images, labels)
        self._report_logits("fake", logits)
        loss = F.softplus(-logits)  # -log sigmoid(D(G(z)))
        self._report("Loss/G/loss", loss)
        terms = [loss]
        if seeking:
            ratio = _image_to_latent_distance(images, batch.gen_z)
            self._report("Loss/G/mode_seeking_ratio", ratio.detach().reshape(1))
            terms.append(self.config.mode_seeking / (ratio + 1e-5))
        _backward(terms, gain)

    def _g_reg(self, batch: _Batch, gain: float) -> None:
        cfg = self.config
        if cfg.pl_weight == 0:
            return
        count = batch.gen_z.shape[0] // cfg.pl_batch_shrink
        images, ws = self.generate(batch.gen_z[:count], batch.gen_c[:count])
        lengths = path_lengths(images, ws)
        penalty = (lengths - self._advance_pl_mean(lengths)).square()
        self._report("Loss/pl_penalty", penalty)
        weighted = penalty * cfg.pl_weight
        self._report("Loss/G/reg", weighted)
        _backward([weighted], gain, anchor=images)

    def _g_both(self, batch: _Batch, gain: float) -> None:
        self._g_main(batch, gain)
        self._g_reg(batch, gain)

    def _d_main(self, batch: _Batch, gain: float) -> None:
        if batch.real_img.shape[0] == batch.gen_z.shape[0] and self._one_d_pass_for_both:
            self._d_main_in_one_pass(batch, gain)
            return
        fake_loss = self._d_fake(batch, gain)
        self._d_real(batch, gain, fake_loss=fake_loss, r1=False)

    def _d_reg(self, batch: _Batch, gain: float) -> None:
        if self.config.r1_gamma != 0:
            self._d_real(batch, gain, fake_loss=None, r1=True)

    def _d_both(self, batch: _Batch, gain: float) -> None:
        if self.config.r1_gamma == 0:
            self._d_main(batch, gain)
            return
        fake_loss = self._d_fake(batch, gain)
        self._d_real(batch, gain, fake_loss=fake_loss, r1=True)

    # --- pieces of the phases --------------------------------------------------------------------

    def generate(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``[N, C, H, W]`` and the ``ws [N, num_ws, w_dim]`` that made them, style mixing included."""
        ws = self.G.mapping(z, c)
        if self.config.style_mixing_prob > 0:
            ws = self._mix_styles(ws, z, c)
        return self.G.synthesis(ws), ws

    def _mix_styles(self, ws: torch.Tensor, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``ws`` with the layers from one crossover on taken from fresh latents (style-mixing regularisation).

        The crossover is shared by the batch: uniform in [1, n) with probability ``style_mixing_prob``,
        else n (no mixing), where n is num_ws, or ``active_ws`` while growing (v1 limits the crossover to
        the layers in use). The fresh latents are drawn either way, as in the official losses.
        """
        num_ws, device = ws.shape[1], ws.device
        active = num_ws if self.active_ws is None else self.active_ws
        crossover = torch.randint(1, max(active, 2), [], device=device)
        mixing = torch.rand([], device=device) < self.config.style_mixing_prob
        crossover = torch.where(mixing, crossover, torch.full_like(crossover, active))
        other = self.G.mapping(torch.randn_like(z), c, skip_w_avg_update=True)
        from_other = torch.arange(num_ws, device=device).reshape(1, -1, 1) >= crossover
        return torch.where(from_other, other, ws)

    def discriminate(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """D's logits ``[N, 1]`` for images seen through the augmentation pipeline, when there is one."""
        pipe = self.augment_pipe
        return self.D(img if pipe is None else pipe(img), c)

    def _advance_pl_mean(self, lengths: torch.Tensor) -> torch.Tensor:
        """Move the running mean path length towards this batch's mean and return the new value, still
        differentiable w.r.t. ``lengths`` (the penalty is measured from it)."""
        moved = self.pl_mean.lerp(lengths.mean(), self.config.pl_decay)
        with torch.no_grad():
            self.pl_mean.copy_(moved)
        return moved

    def _d_fake(self, batch: _Batch, gain: float) -> torch.Tensor:
        """The fake half of Dmain (G frozen): backpropagated here, per-sample loss returned for the report."""
        with torch.no_grad():
            images, _ = self.generate(batch.gen_z, batch.gen_c)
        logits = self.discriminate(images, batch.gen_c)
        self._report_logits("fake", logits)
        loss = F.softplus(logits)  # -log(1 - sigmoid(D(G(z))))
        _backward([loss], gain)
        return loss

    def _d_real(self, batch: _Batch, gain: float, fake_loss: torch.Tensor | None, r1: bool) -> None:
        """One D pass on the reals for the real half of Dmain (when ``fake_loss`` is given) and/or R1."""
        real = batch.real_img.detach().requires_grad_(r1)
        logits = self.discriminate(real, batch.real_c)
        self._report_logits("real", logits)
        terms = []
        if fake_loss is not None:
            real_loss = F.softplus(-logits)  # -log sigmoid(D(x))
            self._report("Loss/D/loss", fake_loss + real_loss)
            terms.append(real_loss)
        if r1:
            (slope,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
            penalty = slope.square().sum([1, 2, 3])
            self._report("Loss/r1_penalty", penalty)
            weighted = penalty * (self.config.r1_gamma / 2)
            self._report("Loss/D/reg", weighted)
            terms.append(weighted)
        _backward(terms, gain, anchor=logits if r1 else None)

    @property
    def _one_d_pass_for_both(self) -> bool:
        # Our discriminators couple samples only through minibatch std, which independent_minibatches
        # keeps per half; a foreign D might couple them some other way. Only on the CPU, where it was
        # measured to help: on a GPU the doubled batch could exceed memory that two passes fit in.
        return (type(self.D).__module__.startswith("stylegan.networks")
                and scheduled_device_type(next(self.D.parameters())) == "cpu")

    def _d_main_in_one_pass(self, batch: _Batch, gain: float) -> None:
        """Dmain with fakes and reals through D as one batch of two independent halves.

        The same losses and gradients as two passes (the official way), to float rounding, but one larger
        forward and backward run faster, on CPUs especially.
        """
        with torch.no_grad():
            images, _ = self.generate(batch.gen_z, batch.gen_c)
        with independent_minibatches(self.D, 2):
            both = self.discriminate(torch.cat([images, batch.real_img.detach()]),
                                     torch.cat([batch.gen_c, batch.real_c]))
        fake, real = both.chunk(2)
        self._report_logits("fake", fake)
        self._report_logits("real", real)
        fake_loss, real_loss = F.softplus(fake), F.softplus(-real)
        self._report("Loss/D/loss", fake_loss + real_loss)
        _backward([fake_loss, real_loss], gain)

    # --- statistics ------------------------------------------------------------------------------

    def _report(self, name: str, value: torch.Tensor) -> None:
        self.stats.setdefault(name, []).append(value.detach().flatten().float())

    def _report_logits(self, kind: str, logits: torch.Tensor) -> None:
        """D's scores for ``kind`` (fake / real) and their signs, which drive the ADA p."""
        self._report(f"Loss/scores/{kind}", logits)
        self._report(f"Loss/signs/{kind}", logits.sign())

    def pop_stats(self) -> dict[str, list[torch.Tensor]]:
        stats, self.stats = self.stats, {}
        return stats


# Phase name -> what it runs; the loop's phase names, in its order.
_PHASE_STEPS: dict[str, Callable[[StyleGAN2Loss, _Batch, float], None]] = {
    "Gmain": StyleGAN2Loss._g_main,
    "Greg": StyleGAN2Loss._g_reg,
    "Gboth": StyleGAN2Loss._g_both,
    "Dmain": StyleGAN2Loss._d_main,
    "Dreg": StyleGAN2Loss._d_reg,
    "Dboth": StyleGAN2Loss._d_both,
}
PHASES = tuple(_PHASE_STEPS)
