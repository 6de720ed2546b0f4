"""Float images → bytes, grids and atomically written PNGs."""

from __future__ import annotations

import os

import numpy as np
import PIL.Image
import pytest
import torch

from stylegan.errors import StyleGANError
from stylegan.explore.images import grid_shape, make_grid, save_png, to_pil, to_uint8


def test_byte_mapping_matches_the_official_formula():
    x = torch.linspace(-1.2, 1.2, 2 * 3 * 5 * 7).reshape(2, 3, 5, 7)
    expected = np.clip(x.numpy().transpose(0, 2, 3, 1) * 127.5 + 128, 0, 255).astype(np.uint8)  # truncates
    got = to_uint8(x)
    assert got.dtype == np.uint8 and got.shape == (2, 5, 7, 3)
    np.testing.assert_array_equal(got, expected)


def test_byte_mapping_truncates_rather_than_rounds():
    x = torch.tensor([-1.0, 0.0, 0.999, 1.0, -2.0, 2.0]).reshape(1, 1, 1, 6)
    assert to_uint8(x).ravel().tolist() == [0, 128, 255, 255, 0, 255]
    assert to_uint8(torch.full([1, 1, 1, 1], 0.7 / 127.5)).item() == 128  # 128.7 → 128, not 129


@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB"), (4, "RGBA")])
def test_pil_modes(channels, mode):
    img = to_pil(np.zeros([4, 5, channels], np.uint8))
    assert img.mode == mode and img.size == (5, 4)


def test_unsupported_channel_count_is_a_user_error():
    with pytest.raises(StyleGANError):
        to_pil(np.zeros([4, 4, 2], np.uint8))


@pytest.mark.parametrize("n, shape", [(1, (1, 1)), (2, (2, 1)), (3, (2, 2)), (4, (2, 2)), (5, (3, 2)),
                                      (9, (3, 3)), (10, (4, 3)), (12, (4, 3)), (13, (4, 4)), (17, (5, 4))])
def test_grid_shape_is_near_square(n, shape):
    cols, rows = grid_shape(n)
    assert (cols, rows) == shape
    assert cols * rows >= n and cols * (rows - 1) < n


def test_make_grid_places_images_row_by_row_and_leaves_the_rest_black():
    images = np.stack([np.full([2, 3, 1], i + 1, np.uint8) for i in range(5)])  # [5, H=2, W=3, 1]
    grid = make_grid(images, grid_w=3, grid_h=2)
    assert grid.shape == (4, 9, 1)
    cell = lambda r, c: grid[r * 2:(r + 1) * 2, c * 3:(c + 1) * 3]  # noqa: E731
    assert [cell(0, c).max() for c in range(3)] == [1, 2, 3]
    assert [cell(1, c).max() for c in range(3)] == [4, 5, 0]


def test_make_grid_refuses_too_few_cells():
    with pytest.raises(StyleGANError, match="4 cells") as info:
        make_grid(np.zeros([5, 2, 2, 3], np.uint8), 2, 2)
    assert info.value.fix == "choose a larger grid_w (--grid-w) or grid_h (--grid-h), or fewer images"


def test_save_png_round_trips_grayscale_and_rgb(tmp_path):
    rng = np.random.default_rng(0)
    for channels in (1, 3):
        image = rng.integers(0, 256, [6, 7, channels], dtype=np.uint8)
        path = save_png(image, tmp_path / f"c{channels}.png")
        with PIL.Image.open(path) as f:
            assert f.mode == ("L" if channels == 1 else "RGB")
            np.testing.assert_array_equal(np.asarray(f).reshape(6, 7, channels), image)
    assert sorted(os.listdir(tmp_path)) == ["c1.png", "c3.png"]  # no temporary files left


def test_save_png_never_leaves_a_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "x.png"
    save_png(np.zeros([2, 2, 3], np.uint8), target)
    before = target.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PIL.Image.Image, "save", fail)
    with pytest.raises(StyleGANError, match="No space left"):
        save_png(np.full([2, 2, 3], 255, np.uint8), target)
    assert os.listdir(tmp_path) == ["x.png"] and target.read_bytes() == before  # old file intact, no temp


def test_saved_pngs_get_ordinary_permissions(tmp_path):
    path = save_png(np.zeros([2, 2, 3], np.uint8), tmp_path / "p.png")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_parse_grid():
    from stylegan.explore.images import parse_grid

    assert parse_grid("8x4") == (8, 4) and parse_grid("3") == (3, 3) and parse_grid(" 2 X 5 ") == (2, 5)
    for junk in ["", "4y4", "0x3", "x4", "4x", "-2x2", "1.5x2", "4x4x4"]:
        with pytest.raises(StyleGANError, match="is not WIDTHxHEIGHT") as info:
            parse_grid(junk)
        assert info.value.fix == "write it like 8x4"
    with pytest.raises(StyleGANError, match="over the limit of 16384"):
        parse_grid("100000x100000")
    with pytest.raises(StyleGANError) as info:
        parse_grid("9" * 100_000)  # a huge value is neither quoted in full nor parsed into a huge grid
    assert len(str(info.value)) < 300


def test_grids_are_bounded_in_cells_and_pixels_before_allocating():
    from stylegan.explore.images import check_grid
    from stylegan.limits import MAX_GRID_CELLS, MAX_IMAGE_PIXELS

    check_grid(128, 128)
    check_grid(128, 128, 128, 128)  # 16384 x 16384 pixels: exactly the limit
    with pytest.raises(StyleGANError, match=r"a 128x129 grid has 16512 cells, over the limit of 16384 "
                                            r"\(MAX_GRID_CELLS\)") as info:
        check_grid(128, 129)
    assert info.value.fix == "choose a smaller grid (--grid/--grid-w/--grid-h) or fewer images"
    with pytest.raises(StyleGANError, match=r"a 32x16 grid of 1024x1024 images is 32768x16384 pixels, over the "
                                            rf"limit of {MAX_IMAGE_PIXELS} pixels for one image"):
        check_grid(32, 16, 1024, 1024)
    with pytest.raises(StyleGANError, match="has no cells"):
        check_grid(0, 3)
    assert MAX_GRID_CELLS == 128 * 128
    # make_grid checks before its canvas: a 100000x100000 grid of 8x8 images would need 640 GB.
    with pytest.raises(StyleGANError, match="MAX_GRID_CELLS"):
        make_grid(np.zeros([1, 8, 8, 3], np.uint8), 100_000, 100_000)
    with pytest.raises(StyleGANError, match="MAX_IMAGE_PIXELS"):
        make_grid(np.zeros([1, 2048, 2048, 1], np.uint8), 16, 8)
