"""bf16 inference (``inference_precision('bf16')``): the accuracy bound against fp32, what stays fp32, the
fallback on CPUs without native bf16, and that the default fp32 path is untouched.

Accuracy: bf16 keeps 8 significant bits (unit roundoff 2⁻⁹ ≈ 0.2 %). Every convolution rounds its inputs
and its output once, about 0.2 % relative each, and the errors of successive layers are independent, so a
network of L layers ends near √(2L)·0.2 % of the activations' scale: for the ~10 layers here about 1 %, i.e.
an RMS of about 1 level of 255 in images of std ≈ 0.5 → PSNR near 45-50 dB. The issue's goal, ≥ 40 dB (RMS
≤ 2.55 levels), is what is asserted; the largest single difference is bounded by 16 levels (a pixel where
the image is steepest in w).
"""

from __future__ import annotations

import math

import pytest
import torch

from stylegan import precision
from stylegan.errors import StyleGANError
from stylegan.networks import Generator
from stylegan.pixels import float_to_bytes
from stylegan.precision import inference_precision, resolve_precision

needs_native_bf16 = pytest.mark.skipif(not precision.cpu_has_native_bf16(),
                                       reason="this CPU has no native bf16 (AVX512-BF16 or AMX)")


def small_generator(resolution: int = 32) -> Generator:
    """A random-weight RGB generator with non-trivial noise strengths, biases and w_avg."""
    torch.manual_seed(0)
    G = Generator(z_dim=64, c_dim=0, w_dim=64, img_resolution=resolution, img_channels=3,
                  mapping_kwargs=dict(num_layers=4), synthesis_kwargs=dict(channel_base=2048, channel_max=64))
    with torch.no_grad():
        for name, p in G.synthesis.named_parameters():
            if name.endswith("noise_strength") or name.endswith("bias"):
                p.normal_(0, 0.1)  # trained networks use both; random init leaves them at 0
    return G.eval().requires_grad_(False)


def psnr_uint8(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(PSNR in dB with peak 255, largest difference in levels) of two float images as the CLI writes them."""
    d = float_to_bytes(a).double() - float_to_bytes(b).double()
    mse = float(d.square().mean())
    return (math.inf if mse == 0 else 10 * math.log10(255**2 / mse)), float(d.abs().max())


def render(G: Generator, z: torch.Tensor, name: str, **kwargs) -> torch.Tensor:
    with torch.no_grad(), inference_precision(name):
        return G(z, None, noise_mode="const", **kwargs)


@needs_native_bf16
def test_bf16_images_are_within_the_accuracy_bound_of_fp32():
    G = small_generator()
    z = torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(1))
    reference, fast = render(G, z, "fp32"), render(G, z, "bf16")
    assert fast.dtype is torch.float32 and fast.shape == reference.shape
    assert 0.2 < float(reference.std()) < 1.2  # images in range, not saturated (which would flatter PSNR)
    psnr, largest = psnr_uint8(reference, fast)
    assert psnr >= 40, psnr
    assert largest <= 16, largest
    assert not torch.equal(reference, fast)  # bf16 really ran (else this test would prove nothing)


@needs_native_bf16
def test_bf16_runs_the_convolutions_in_bf16_and_keeps_the_rest_fp32():
    G = small_generator()
    seen = {}
    hooks = [G.synthesis.b16.conv1.register_forward_hook(lambda m, i, o: seen.__setitem__("conv", o.dtype)),
             G.synthesis.b16.torgb.register_forward_hook(lambda m, i, o: seen.__setitem__("torgb_in", i[0].dtype)),
             G.mapping.register_forward_hook(lambda m, i, o: seen.__setitem__("mapping", o.dtype))]
    z = torch.randn(2, G.z_dim)
    render(G, z, "bf16")
    for h in hooks:
        h.remove()
    assert seen == {"conv": torch.bfloat16, "torgb_in": torch.float32, "mapping": torch.float32}
    # The mapping network gives the same ws bit for bit: it never sees the precision.
    with torch.no_grad(), inference_precision("bf16"):
        ws_bf16 = G.mapping(z, None)
    assert torch.equal(ws_bf16, G.mapping(z, None))
    # force_fp32 wins over the context.
    assert torch.equal(render(G, z, "bf16", force_fp32=True), render(G, z, "fp32"))


def test_fp32_is_the_default_and_identical_inside_an_fp32_context():
    G = small_generator(16)
    z = torch.randn(2, G.z_dim)
    with torch.no_grad():
        outside = G(z, None, noise_mode="const")
    assert precision.active_precision() == "fp32"
    assert torch.equal(render(G, z, "fp32"), outside)
    with inference_precision("bf16"):
        with inference_precision("fp32"):
            assert precision.active_precision() == "fp32"
        assert precision.active_precision() == "bf16"
    assert precision.active_precision() == "fp32"


@pytest.mark.parametrize("name", ["fp32", "bf16"])
def test_an_in_place_weight_change_is_seen_by_the_next_pass(name):
    """Weight-only work is kept between inference passes; changing a weight must invalidate it."""
    if name == "bf16" and not precision.cpu_has_native_bf16():
        pytest.skip("no native bf16")
    G, fresh = small_generator(16), small_generator(16)
    z = torch.randn(2, G.z_dim)
    render(G, z, name)  # fills the kept values
    with torch.no_grad():
        for model in (G, fresh):
            model.synthesis.b8.conv1.weight.mul_(-1.5)
            model.synthesis.b16.conv0.weight.add_(0.25)
    assert torch.equal(render(G, z, name), render(fresh, z, name))


@needs_native_bf16
def test_gradients_flow_through_bf16_synthesis_like_the_projector_needs():
    G = small_generator(16)
    ws = G.mapping(torch.randn(1, G.z_dim), None).detach()
    grads = {}
    for name in ("fp32", "bf16"):
        w = ws.clone().requires_grad_(True)
        with inference_precision(name):
            G.synthesis(w, noise_mode="const").square().mean().backward()
        grads[name] = w.grad.flatten()
    cosine = torch.nn.functional.cosine_similarity(grads["fp32"], grads["bf16"], dim=0)
    assert torch.isfinite(grads["bf16"]).all() and cosine > 0.99, cosine


def test_unknown_precision_is_refused_with_the_choices():
    with pytest.raises(StyleGANError, match="unknown precision 'fp8'") as e:
        resolve_precision("fp8")
    assert "fp32 or bf16" in e.value.fix
    with pytest.raises(StyleGANError):
        with inference_precision("half"):
            pass


def test_without_native_bf16_it_says_so_once_and_runs_fp32(monkeypatch, capsys):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f"})
    monkeypatch.setattr(precision, "_fallback_said", False)
    assert resolve_precision("bf16", "cpu") == "fp32"
    assert resolve_precision("BF16", "cpu") == "fp32"
    assert capsys.readouterr().err.count("no native bf16") == 1
    assert resolve_precision("fp32", "cpu") == "fp32"


def test_native_bf16_is_read_from_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert resolve_precision("bf16", "cpu") == "bf16"
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"amx_bf16", "amx_tile"})
    assert resolve_precision("bf16", "cpu") == "bf16"
