"""fp16 blocks against the float64 reference: CUDA's schedule, run on the CPU unless ``--device cuda``.

Half precision has an 11-bit significand, so the outputs land about 1e-3 (relative L2) off the exact
values. The official code's fp16 path, run on the CPU with the same weights, lands as far off: on a 32²
generator with three fp16 blocks, 0.69e-3 to 1.53e-3 for ours and 0.76e-3 to 1.56e-3 for theirs.
"""

import numpy as np
import pytest
import torch

from stylegan.ops import modulated_conv2d
from tests.networks import reference as ref
from tests.networks.test_numerics import make_d, make_g, numpy_state, rel_err

FP16_TOL = 5e-3  # measured up to 1.0e-3 on these networks
FP32_TOL = 1e-5  # an error below this would mean the fp16 path did not run

G_CASES = {
    "skip": dict(num_fp16_res=2, conv_clamp=256),
    "resnet": dict(architecture="resnet", num_fp16_res=2, conv_clamp=256),
    "orig-conditional-all-fp16": dict(architecture="orig", c_dim=3, num_fp16_res=3, conv_clamp=256),
    "grayscale-32-unclamped": dict(res=32, channels=1, num_fp16_res=3),
}


D_CASES = {
    "resnet": dict(num_fp16_res=2, conv_clamp=256),
    "skip-conditional-all-fp16": dict(architecture="skip", c_dim=3, num_fp16_res=4, conv_clamp=256,
                                      mapping_kwargs=dict(num_layers=1)),
    "orig-32": dict(architecture="orig", res=32, num_fp16_res=3, conv_clamp=256),
}


@pytest.mark.parametrize("case", G_CASES)
def test_fp16_generator_is_within_half_precision_of_the_reference(case, gpu_device):
    G, kw = make_g(**G_CASES[case])
    ws = np.random.RandomState(0).randn(3, G.num_ws, kw["w_dim"])
    want = ref.synthesis(numpy_state(G), kw, ws, noise_mode="const")
    G = G.to(gpu_device)
    for fused in [True, False]:
        for grad in [True, False]:
            with torch.set_grad_enabled(grad):
                got = G.synthesis(torch.from_numpy(ws).float().to(gpu_device), noise_mode="const",
                                  fused_modconv=fused)
            assert got.dtype == torch.float32 and got.is_contiguous()
            assert FP32_TOL < rel_err(got, want) < FP16_TOL, (fused, grad)


def test_the_cpu_computes_fp16_marked_blocks_in_exact_fp32():
    G, kw = make_g(**G_CASES["resnet"])
    D, dkw = make_d(**D_CASES["resnet"])
    ws = np.random.RandomState(1).randn(2, G.num_ws, kw["w_dim"])
    img = np.random.RandomState(2).randn(2, 3, 16, 16)
    got = G.synthesis(torch.from_numpy(ws).float(), noise_mode="const")
    assert rel_err(got, ref.synthesis(numpy_state(G), kw, ws, noise_mode="const")) < FP32_TOL
    assert rel_err(D(torch.from_numpy(img).float(), None), ref.discriminator(numpy_state(D), dkw, img, None)) < FP32_TOL


def test_force_fp32_gives_the_exact_arithmetic_back(gpu_device):
    G, kw = make_g(**G_CASES["resnet"])
    ws = np.random.RandomState(1).randn(2, G.num_ws, kw["w_dim"])
    want = ref.synthesis(numpy_state(G), kw, ws, noise_mode="const")
    got = G.to(gpu_device).synthesis(torch.from_numpy(ws).float().to(gpu_device), noise_mode="const", force_fp32=True)
    assert rel_err(got, want) < FP32_TOL


def test_fp16_blocks_hand_fp16_features_to_the_next_block(gpu_device):
    G, kw = make_g(**G_CASES["skip"])
    G = G.to(gpu_device)
    seen = {}
    for name, block in G.synthesis.named_children():
        block.register_forward_hook(lambda m, args, out, name=name: seen.update({name: out[0].dtype}))
    G.synthesis(torch.randn(2, G.num_ws, kw["w_dim"], device=gpu_device))
    assert seen == {"b4": torch.float32, "b8": torch.float16, "b16": torch.float16}


@pytest.mark.parametrize("case", D_CASES)
def test_fp16_discriminator_is_within_half_precision_of_the_reference(case, gpu_device):
    D, kw = make_d(**D_CASES[case])
    rng = np.random.RandomState(2)
    img = rng.randn(4, kw["img_channels"], kw["img_resolution"], kw["img_resolution"])
    c = np.eye(kw["c_dim"])[[0, 1, 2, 0]] if kw["c_dim"] else None
    want = ref.discriminator(numpy_state(D), kw, img, c)
    got = D.to(gpu_device)(torch.from_numpy(img).float().to(gpu_device),
                            torch.from_numpy(c).float().to(gpu_device) if c is not None else None)
    assert got.dtype == torch.float32
    assert FP32_TOL < rel_err(got, want) < 2e-2  # a handful of logits: measured up to 3.2e-3


@pytest.mark.parametrize("fused", [True, False])
def test_fp16_modulated_conv_survives_styles_whose_products_overflow_half_precision(fused, device):
    # |x·s| ~ 2000 summed over 576 taps is far past fp16's 65504; max-norm pre-scaling of the weights
    # and styles (demodulation divides it back out) keeps every intermediate in range.
    torch.manual_seed(0)
    x, w, s = torch.randn(2, 64, 8, 8), torch.randn(16, 64, 3, 3), torch.randn(2, 64) * 2000
    want = modulated_conv2d(x.double(), w.double(), s.double(), padding=1, fused=fused)
    x, w, s = (t.to(device, torch.float16) for t in (x, w, s))
    got = modulated_conv2d(x, w, s, padding=1, fused=fused)
    assert got.dtype == torch.float16 and got.isfinite().all()
    assert rel_err(got.float(), want.numpy()) < FP16_TOL
