"""``stylegan info``: what a network file holds."""

from __future__ import annotations

from typing import Any

import click
from torch import nn

import stylegan
from stylegan.cli.options import network_option
from stylegan.explore.style_mix import format_indices, style_groups
from stylegan.formats.records import AugmentPipeRecord
from stylegan.networks import StyleGAN1Discriminator, StyleGAN1Generator
from stylegan.networks.stylegan1 import describe_lod
from stylegan.networks.stylegan3 import StyleGAN3Generator


def parameter_count(module: nn.Module) -> int:
    """Number of trainable-parameter values (buffers such as w_avg not included)."""
    return sum(p.numel() for p in module.parameters())


def network_family(G: nn.Module) -> str:
    """'StyleGAN (v1)', 'StyleGAN3' or 'StyleGAN2', from the generator's class."""
    if isinstance(G, StyleGAN1Generator):
        return "StyleGAN (v1)"
    return "StyleGAN3" if isinstance(G, StyleGAN3Generator) else "StyleGAN2"


def describe_augment_pipe(record: AugmentPipeRecord) -> list[str]:
    """A training snapshot's augmentation pipeline in two lines: its probability p and the enabled augmentations.

    Its filter-bank tensors are internal constants; printing them would bury the rest of the output.
    """
    p = record.p
    enabled = [k for k, v in record.init_kwargs.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and v and "_" not in k]
    return [f"  p: {float(p):.6g}" if p is not None else "  p: (not stored)",
            f"  enabled: {', '.join(enabled) or 'none'}"]


def describe_network(net: dict[str, Any]) -> list[str]:
    """The lines ``stylegan info`` prints for a ``load_network`` result."""
    G = net["G_ema"]
    lines = [
        f"format:      {net.get('format', 'unknown')}",
        f"family:      {network_family(G)}"
        + (f" ({type(G).__name__})" if type(G).__name__ not in ("Generator", "StyleGAN3Generator") else ""),
        f"resolution:  {G.img_resolution}x{G.img_resolution}",
        f"channels:    {G.img_channels}",
        f"z_dim:       {G.z_dim}",
        f"w_dim:       {G.w_dim}",
        f"num_ws:      {G.num_ws}",
        f"c_dim:       {G.c_dim}" + (" (unconditional)" if G.c_dim == 0 else f" ({G.c_dim} classes)"),
        *([f"colours:     {net['colour_order']}"] if net.get("colour_order") else []),  # MMGeneration: BGR or RGB
        "parameters:",
    ]
    for key, module in net.items():
        if isinstance(module, nn.Module):
            count = parameter_count(module)
            lines.append(f"  {key + ':':<13}{count} ({count / 1e6:.2f}M, {type(module).__name__})")
    lines.append("styles (w indices):")
    for name, indices in style_groups(G.num_ws).items():
        lines.append(f"  {name + ':':<13}{format_indices(indices)}")
    if isinstance(G, StyleGAN1Generator):  # the TF graph's default truncation, which we do not apply unasked
        lines.append(f"truncation:  v1 default psi {G.default_truncation_psi}, cutoff {G.default_truncation_cutoff} "
                     f"(--trunc {G.default_truncation_psi} --trunc-cutoff {G.default_truncation_cutoff})")
    lods = {key: float(m.lod) for key, m in net.items() if isinstance(m, (StyleGAN1Generator, StyleGAN1Discriminator))}
    if any(lods.values()):  # a progressive-growing snapshot: outputs still blended from lower resolutions
        lines.append("growing:     mid-training snapshot (images are drawn at full size, upsampled)")
        lines += [f"  {key + ':':<13}{describe_lod(lod, G.img_resolution)}" for key, lod in lods.items()]
    extra = {k: v for k, v in net.items()
             if not isinstance(v, nn.Module) and k not in ("format", "colour_order") and v is not None}
    for key, value in extra.items():
        lines.append(f"{key}:")
        if isinstance(value, AugmentPipeRecord):
            lines += describe_augment_pipe(value)
        elif isinstance(value, dict):
            lines += [f"  {k}: {v}" for k, v in value.items()] or ["  (empty)"]
        else:
            lines.append(f"  {value}")
    return lines


@click.command()
@network_option
def info(network: str) -> None:
    """Show a network's format, shapes, parameter counts, style groups and training metadata."""
    click.echo("\n".join(describe_network(stylegan.load_network(network))))
