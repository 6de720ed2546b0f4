"""Projector targets: center crop + Lanczos resize as the official projector does it, channels, sources."""

from __future__ import annotations

import zipfile

import numpy as np
import PIL.Image
import pytest

from stylegan.errors import StyleGANError
from stylegan.explore.targets import (
    Target,
    list_targets,
    load_target,
    output_name,
    read_target,
    target_class,
    unique_names,
)


def photo(w, h, mode="RGB", seed=0):
    rng = np.random.RandomState(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = rng.randint(0, 256, size=(h, w, channels)).astype(np.uint8)
    return PIL.Image.fromarray(arr[:, :, 0] if channels == 1 else arr, mode)


def test_center_crop_and_resize_like_the_official_projector(tmp_path):
    image = photo(60, 40)
    image.save(tmp_path / "t.png")
    got = load_target(tmp_path / "t.png", 16, 3)
    expected = np.asarray(image.crop((10, 0, 50, 40)).resize((16, 16), PIL.Image.LANCZOS))
    assert got.shape == (16, 16, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)


def test_grayscale_and_colour_conversions(tmp_path):
    photo(20, 20, "L").save(tmp_path / "g.png")
    rgb = load_target(tmp_path / "g.png", 20, 3)
    assert rgb.shape == (20, 20, 3)
    np.testing.assert_array_equal(rgb[:, :, 0], rgb[:, :, 2])
    photo(20, 20).save(tmp_path / "c.png")
    gray = load_target(tmp_path / "c.png", 20, 1)
    np.testing.assert_array_equal(gray[:, :, 0], np.asarray(PIL.Image.open(tmp_path / "c.png").convert("L")))


def test_transparency_is_composited_over_black(tmp_path):
    arr = np.zeros([8, 8, 4], np.uint8)
    arr[..., :3] = 200
    arr[..., 3] = 255
    arr[:4, :, 3] = 0  # top half fully transparent
    arr[4:6, :, 3] = 128
    PIL.Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    got = load_target(tmp_path / "a.png", 8, 3)
    assert (got[:4] == 0).all() and (got[6:] == 200).all()
    assert np.abs(got[4:6].astype(int) - round(200 * 128 / 255)).max() <= 1


def test_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(StyleGANError, match="not a readable image"):
        load_target(tmp_path / "notes.png", 16, 3)
    with pytest.raises(StyleGANError, match="does not exist"):
        list_targets(tmp_path / "missing.png")


def test_folders_and_zips_in_sorted_order(tmp_path):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    for name, seed in [("b.png", 1), ("a.jpg", 2), ("sub/c.png", 3)]:
        photo(10, 10, seed=seed).save(folder / name)
    (folder / "readme.txt").write_text("not an image")
    targets, many = list_targets(folder)
    assert many and [t.name for t in targets] == ["a.jpg", "b.png", "sub/c.png"]
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as z:
        for name in ("00000/img00000001.png", "00000/img00000000.png"):
            z.write(folder / "b.png", name)
    targets, many = list_targets(tmp_path / "d.zip", limit=1)
    assert many and [t.name for t in targets] == ["00000/img00000000.png"]
    assert read_target(targets[0], 10, 3).shape == (10, 10, 3)
    assert list_targets(folder / "b.png") [1] is False
    (tmp_path / "empty").mkdir()
    with pytest.raises(StyleGANError, match="holds no images"):
        list_targets(tmp_path / "empty")


def test_output_names():
    assert output_name("00000/img00000003.png") == "00000_img00000003"
    assert output_name("my photo.JPG") == "my_photo"
    assert unique_names(["a", "b", "a"]) == ["a", "b", "a-2"]


def test_not_an_image_says_so_once(tmp_path):
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(StyleGANError) as info:
        load_target(tmp_path / "notes.png", 16, 3)
    assert str(info.value.what).count("not a readable image") == 1


def test_target_class_names_the_class_idx_argument():
    def target(label):
        return Target("a.png", lambda: None, label)

    assert target_class(target(2), 3, None) == 2 and target_class(target(2), 3, 0) == 0
    assert target_class(target(None), 0, None) is None
    for label, what in [(None, "the network is conditional with 3 classes and target a.png has no class label"),
                        (5, "target a.png has class 5 in dataset.json, but the network has 3 classes")]:
        with pytest.raises(StyleGANError, match=f"^{what}") as info:
            target_class(target(label), 3, None)
        assert info.value.fix == "pick one with class_idx (--class), 0 to 2"
    with pytest.raises(StyleGANError, match="has a label vector") as info:
        target_class(target([0.5]), 3, None)
    assert info.value.fix == "pick one with class_idx (--class)"
