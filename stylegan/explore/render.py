"""Rendering in batches: images for seeds (mapping + synthesis) or for given ws (synthesis only).

Both yield float32 CPU batches in about [-1, 1]; how they become bytes and files is the caller's business.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch import nn
from tqdm import tqdm

from stylegan.devices import module_device
from stylegan.errors import StyleGANError
from stylegan.explore.labels import check_class, class_labels
from stylegan.explore.seeds import seed_latents
from stylegan.explore.ws_files import check_ws_shape
from stylegan.networks.layers import NOISE_MODES


def check_noise_mode(noise_mode: str) -> None:
    """Raise StyleGANError unless ``noise_mode`` is one of NOISE_MODES ('const', 'random', 'none')."""
    if noise_mode not in NOISE_MODES:
        raise StyleGANError(f"unknown noise mode {noise_mode!r}", f"use one of {', '.join(NOISE_MODES)}")


def check_batch_size(batch_size: int) -> None:
    """Raise StyleGANError unless ``batch_size`` is at least 1."""
    if batch_size < 1:
        raise StyleGANError(f"batch size {batch_size} is too small", "use a batch size of at least 1")


def images_from_seeds(
    G: nn.Module,
    seeds: Sequence[int],
    *,
    truncation_psi: float = 1,
    truncation_cutoff: int | None = None,
    class_idx: int | None = None,
    noise_mode: str = "const",
    batch_size: int = 8,
    progress: bool = True,
) -> Iterator[torch.Tensor]:
    """Render one image per seed, yielding float32 CPU batches ``[B, C, H, W]`` in about [-1, 1].

    Batches come in seed order and together cover ``seeds``. A seed's image does not depend on the
    batch it lands in (up to float rounding) when ``noise_mode`` is 'const' or 'none'.
    """
    # Validate now rather than at the first next(), so mistakes surface where the call is made.
    check_noise_mode(noise_mode)
    check_batch_size(batch_size)
    check_class(G, class_idx)
    latents = seed_latents(seeds, G.z_dim)
    # No cutoff given: leave it to the network (all ws; StyleGAN v1 keeps its own default of 8).
    cutoff = {} if truncation_cutoff is None else {"truncation_cutoff": truncation_cutoff}

    def render() -> Iterator[torch.Tensor]:
        device = module_device(G)
        with tqdm(total=len(seeds), unit="img", desc="generate", disable=not progress) as bar, torch.no_grad():
            for start in range(0, len(seeds), batch_size):
                z = latents[start:start + batch_size].to(device)
                images = G(z, class_labels(G, class_idx, len(z)), truncation_psi=truncation_psi,
                           noise_mode=noise_mode, **cutoff)
                bar.update(len(z))
                yield images.to(device="cpu", dtype=torch.float32)

    return render()


def images_from_ws(
    G: nn.Module, ws: torch.Tensor, *, noise_mode: str = "const", batch_size: int = 8, progress: bool = True
) -> Iterator[torch.Tensor]:
    """Synthesize ws ``[N, num_ws, w_dim]``, yielding float32 CPU batches ``[B, C, H, W]`` in about [-1, 1]."""
    check_noise_mode(noise_mode)
    check_batch_size(batch_size)
    ws = check_ws_shape(ws, G)

    def render() -> Iterator[torch.Tensor]:
        device = module_device(G)
        with tqdm(total=len(ws), unit="img", desc="synthesize", disable=not progress) as bar, torch.no_grad():
            for start in range(0, len(ws), batch_size):
                images = G.synthesis(ws[start:start + batch_size].to(device), noise_mode=noise_mode)
                bar.update(len(images))
                yield images.to(device="cpu", dtype=torch.float32)

    return render()
