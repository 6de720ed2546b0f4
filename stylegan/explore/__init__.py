"""Exploring a trained generator: seeds and grids, image files, generation, style mixing."""

from stylegan.explore.generate import resolve_grid, write_images
from stylegan.explore.images import grid_shape, make_grid, save_png, to_pil, to_uint8
from stylegan.explore.labels import check_class, class_labels
from stylegan.explore.render import images_from_seeds, images_from_ws
from stylegan.explore.seeds import parse_index_list, parse_seeds, seed_latents, z_from_seed
from stylegan.explore.style_mix import StyleMix, mix_ws, parse_styles, style_groups, style_mix, write_style_mix
from stylegan.explore.ws_files import check_ws_shape, read_projected_w, save_ws

__all__ = [
    "resolve_grid", "write_images",
    "grid_shape", "make_grid", "save_png", "to_pil", "to_uint8",
    "check_class", "class_labels",
    "images_from_seeds", "images_from_ws",
    "parse_index_list", "parse_seeds", "seed_latents", "z_from_seed",
    "StyleMix", "mix_ws", "parse_styles", "style_groups", "style_mix", "write_style_mix",
    "check_ws_shape", "read_projected_w", "save_ws",
]
