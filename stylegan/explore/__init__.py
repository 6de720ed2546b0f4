"""Exploring a trained generator: seeds and grids, image files, generation, style mixing."""

from stylegan.explore.generate import (
    check_class,
    check_ws_shape,
    class_labels,
    images_from_seeds,
    images_from_ws,
    read_projected_w,
    resolve_grid,
    seed_latents,
    write_images,
)
from stylegan.explore.images import grid_shape, make_grid, save_png, to_pil, to_uint8
from stylegan.explore.seeds import parse_index_list, parse_seeds, z_from_seed
from stylegan.explore.style_mix import StyleMix, mix_ws, parse_styles, style_groups, style_mix, write_style_mix

__all__ = [
    "check_class", "check_ws_shape", "class_labels", "images_from_seeds", "images_from_ws", "read_projected_w",
    "resolve_grid", "seed_latents", "write_images",
    "grid_shape", "make_grid", "save_png", "to_pil", "to_uint8",
    "parse_index_list", "parse_seeds", "z_from_seed",
    "StyleMix", "mix_ws", "parse_styles", "style_groups", "style_mix", "write_style_mix",
]
