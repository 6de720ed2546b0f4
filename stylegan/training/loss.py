"""The StyleGAN2(-ADA) objective: non-saturating logistic loss with lazy R1 and path-length regularisers.

Training alternates four phases (as in the official code): ``Gmain`` and ``Dmain`` every minibatch,
``Greg`` every ``G_reg_interval`` (4) and ``Dreg`` every ``D_reg_interval`` (16) minibatches, the lazy
regularisers being scaled up by their interval (``gain``) so their average strength is unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from stylegan.networks.layers import independent_minibatches
from stylegan.networks.stylegan2 import scheduled_device_type

PHASES = ("Gmain", "Greg", "Gboth", "Dmain", "Dreg", "Dboth")


@dataclass
class LossConfig:
    r1_gamma: float = 10.0  # R1 weight γ; the penalty is γ/2 · ||∇D(x)||²
    style_mixing_prob: float = 0.9  # chance of switching to a second latent at a random layer
    pl_weight: float = 2.0  # path-length regulariser weight, 0 = off
    pl_batch_shrink: int = 2  # the PL pass uses batch / shrink samples
    pl_decay: float = 0.01  # decay of the running mean path length


class StyleGAN2Loss:
    def __init__(self, G: nn.Module, D: nn.Module, augment_pipe: nn.Module | None = None,
                 config: LossConfig | None = None):
        self.G, self.D, self.augment_pipe = G, D, augment_pipe
        self.config = config or LossConfig()
        self.pl_mean = torch.zeros([], device=next(G.parameters()).device)
        self.stats: dict[str, list[torch.Tensor]] = {}

    # --- helpers ---------------------------------------------------------------------------------

    def _report(self, name: str, value: torch.Tensor) -> None:
        self.stats.setdefault(name, []).append(value.detach().flatten().float())

    def _report_logits(self, kind: str, logits: torch.Tensor) -> None:
        """D's scores for ``kind`` (fake / real) and their signs, which drive the ADA p."""
        self._report(f"Loss/scores/{kind}", logits)
        self._report(f"Loss/signs/{kind}", logits.sign())

    def pop_stats(self) -> dict[str, list[torch.Tensor]]:
        stats, self.stats = self.stats, {}
        return stats

    def generate(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and the ws that made them, with style-mixing regularisation."""
        mapping = self.G.mapping
        ws = mapping(z, c)
        prob = self.config.style_mixing_prob
        if prob > 0:
            # One crossover point for the whole batch, drawn from [1, num_ws), or none (num_ws).
            cutoff = torch.empty([], dtype=torch.int64, device=ws.device).random_(1, ws.shape[1])
            cutoff = torch.where(torch.rand([], device=ws.device) < prob, cutoff, torch.full_like(cutoff, ws.shape[1]))
            mixed = mapping(torch.randn_like(z), c, skip_w_avg_update=True)
            layer = torch.arange(ws.shape[1], device=ws.device).reshape(1, -1, 1)
            ws = torch.where(layer >= cutoff, mixed, ws)
        return self.G.synthesis(ws), ws

    @property
    def _one_d_pass_for_both(self) -> bool:
        # Our discriminators couple samples only through minibatch std, which independent_minibatches
        # keeps per half; a foreign D might couple them some other way. Only on the CPU, where it was
        # measured to help: on a GPU the doubled batch could exceed memory that two passes fit in.
        return (type(self.D).__module__.startswith("stylegan.networks")
                and scheduled_device_type(next(self.D.parameters())) == "cpu")

    def _d_main_in_one_pass(self, real_img, real_c, gen_z, gen_c, gain) -> None:
        """Dmain with fakes and reals through D as one batch of two independent halves.

        The same losses and gradients as two passes (the official way), to float rounding, but one larger
        forward and backward run faster, on CPUs especially.
        """
        with torch.no_grad():
            gen_img, _ = self.generate(gen_z, gen_c)
        with independent_minibatches(self.D, 2):
            logits = self.discriminate(torch.cat([gen_img, real_img.detach()]), torch.cat([gen_c, real_c]))
        fake, real = logits.chunk(2)
        self._report_logits("fake", fake)
        self._report_logits("real", real)
        loss_fake, loss_real = F.softplus(fake), F.softplus(-real)
        self._report("Loss/D/loss", loss_fake + loss_real)
        (loss_fake.mean() + loss_real.mean()).mul(gain).backward()

    def discriminate(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c)

    # --- phases ----------------------------------------------------------------------------------

    def accumulate_gradients(self, phase: str, real_img: torch.Tensor, real_c: torch.Tensor,
                             gen_z: torch.Tensor, gen_c: torch.Tensor, gain: float) -> None:
        """Run one phase on one (sub)batch and accumulate its gradients into the parameters."""
        if phase not in PHASES:
            raise ValueError(f"unknown training phase {phase!r}")
        cfg = self.config
        do_g_main = phase in ("Gmain", "Gboth")
        do_d_main = phase in ("Dmain", "Dboth")
        do_g_pl = phase in ("Greg", "Gboth") and cfg.pl_weight != 0
        do_d_r1 = phase in ("Dreg", "Dboth") and cfg.r1_gamma != 0

        if do_g_main:
            gen_img, _ = self.generate(gen_z, gen_c)
            logits = self.discriminate(gen_img, gen_c)
            self._report_logits("fake", logits)
            loss = F.softplus(-logits)  # -log sigmoid(D(G(z)))
            self._report("Loss/G/loss", loss)
            loss.mean().mul(gain).backward()

        if do_g_pl:
            n = gen_z.shape[0] // cfg.pl_batch_shrink
            gen_img, gen_ws = self.generate(gen_z[:n], gen_c[:n])
            # Random image-space direction, scaled so the expected length is independent of resolution.
            pl_noise = torch.randn_like(gen_img) / math.sqrt(gen_img.shape[2] * gen_img.shape[3])
            (grads,) = torch.autograd.grad((gen_img * pl_noise).sum(), gen_ws, create_graph=True)
            lengths = grads.square().sum(2).mean(1).sqrt()
            pl_mean = self.pl_mean.lerp(lengths.mean(), cfg.pl_decay)
            self.pl_mean.copy_(pl_mean.detach())
            penalty = (lengths - pl_mean).square()
            self._report("Loss/pl_penalty", penalty)
            loss = penalty * cfg.pl_weight
            self._report("Loss/G/reg", loss)
            # The zero-weighted image term keeps every synthesis parameter in the graph.
            (gen_img[:, 0, 0, 0] * 0 + loss).mean().mul(gain).backward()

        if do_d_main and not do_d_r1 and real_img.shape[0] == gen_z.shape[0] and self._one_d_pass_for_both:
            self._d_main_in_one_pass(real_img, real_c, gen_z, gen_c, gain)
            return

        loss_fake = 0
        if do_d_main:
            with torch.no_grad():
                gen_img, _ = self.generate(gen_z, gen_c)
            logits = self.discriminate(gen_img, gen_c)
            self._report_logits("fake", logits)
            loss_fake = F.softplus(logits)  # -log(1 - sigmoid(D(G(z))))
            loss_fake.mean().mul(gain).backward()

        if do_d_main or do_d_r1:
            real = real_img.detach().requires_grad_(do_d_r1)
            logits = self.discriminate(real, real_c)
            self._report_logits("real", logits)
            loss_real = 0
            if do_d_main:
                loss_real = F.softplus(-logits)
                self._report("Loss/D/loss", loss_fake + loss_real)
            loss_r1 = 0
            if do_d_r1:
                (grads,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
                penalty = grads.square().sum([1, 2, 3])
                loss_r1 = penalty * (cfg.r1_gamma / 2)
                self._report("Loss/r1_penalty", penalty)
                self._report("Loss/D/reg", loss_r1)
            (logits * 0 + loss_real + loss_r1).mean().mul(gain).backward()
