"""One step of every training phase with fp16 blocks: CUDA's schedule, run on the CPU unless --device cuda.

R1 and path length differentiate twice through fp16 convolutions, filters and the clamp; the gradients
must stay finite and close to the fp32 ones. On these networks ours land 0.3e-2 to 4.8e-2 (relative L2)
from the fp32 gradients; the official code's fp16 step, given the same weights and batch, lands 0.4e-2 to
4.5e-2 from its own fp32 step. A wrong gain, clamp or cast in an fp16 block is off by order one.
"""

import pytest
import torch

from stylegan.networks import build_network
from stylegan.training.loss import LossConfig, StyleGAN2Loss

PHASES = ["Gmain", "Greg", "Dmain", "Dreg"]


def networks(architecture, device, num_fp16_res=2):
    torch.manual_seed(0)
    G = build_network("Generator", dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                                        mapping_kwargs=dict(num_layers=2),
                                        synthesis_kwargs=dict(channel_base=512, channel_max=32,
                                                              num_fp16_res=num_fp16_res, conv_clamp=256,
                                                              architecture=architecture)))
    D = build_network("Discriminator", dict(c_dim=0, img_resolution=16, img_channels=3, channel_base=512,
                                            channel_max=32, num_fp16_res=num_fp16_res, conv_clamp=256,
                                            architecture=architecture, epilogue_kwargs=dict(mbstd_group_size=4)))
    return G.train().to(device), D.train().to(device)


def phase_gradients(G, D, phase):
    trained = G if phase.startswith("G") else D
    G.requires_grad_(trained is G), D.requires_grad_(trained is D)
    for p in trained.parameters():
        p.grad = None
    loss = StyleGAN2Loss(G, D, config=LossConfig(r1_gamma=1.0, pl_weight=2.0))
    gen = torch.Generator().manual_seed(1)
    real, z, c = torch.randn(8, 3, 16, 16, generator=gen), torch.randn(8, 16, generator=gen), torch.zeros(8, 0)
    device = next(G.parameters()).device
    real, z, c = real.to(device), z.to(device), c.to(device)
    torch.manual_seed(2)  # the same noise, mixing and PL directions in both precisions
    loss.accumulate_gradients(phase, real, c, z, c, gain=1.0)
    return torch.cat([p.grad.flatten() for p in trained.parameters() if p.grad is not None])


@pytest.mark.parametrize("architecture", ["skip", "resnet"])
@pytest.mark.parametrize("phase", PHASES)
def test_fp16_gradients_are_finite_and_near_the_fp32_ones(phase, architecture, gpu_device):
    fp32 = phase_gradients(*networks(architecture, gpu_device, num_fp16_res=0), phase)  # same weights
    fp16 = phase_gradients(*networks(architecture, gpu_device), phase)
    assert fp16.isfinite().all()
    err = float((fp16 - fp32).norm() / fp32.norm())
    assert 1e-5 < err < 0.15, err
