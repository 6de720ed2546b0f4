"""The dataset tool: every source, the official layout, the options, and a faithful round trip."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import PIL.Image
import pytest

from stylegan.data import ImageDataset, convert_dataset
from stylegan.data.transforms import Transform
from stylegan.data.writer import archive_name

from .conftest import (make_cifar10_tarball, make_image_folder, make_mnist, random_image, save_image,
                       write_labels)


def read_zip(path):
    """{name: pixels HWC or HW} and the parsed dataset.json of a dataset ZIP."""
    with zipfile.ZipFile(path) as z:
        images = {n: np.asarray(PIL.Image.open(io.BytesIO(z.read(n)))) for n in z.namelist() if n.endswith(".png")}
        meta = json.loads(z.read("dataset.json"))
        infos = z.infolist()
    return images, meta, infos


# ----------------------------------------------------------------------------------------------- layout


def test_archive_names_follow_the_official_scheme():
    assert archive_name(0) == "00000/img00000000.png"
    assert archive_name(999) == "00000/img00000999.png"
    assert archive_name(1000) == "00001/img00001000.png"
    assert archive_name(123456) == "00123/img00123456.png"


def test_folder_of_images_to_zip_keeps_pixels_labels_and_order(tmp_path):
    src = tmp_path / "src"
    images = make_image_folder(src, n=5)
    report = convert_dataset(src, tmp_path / "out.zip", progress=False)
    assert (report.count, report.resolution, report.channels, report.label_kind, report.label_dim) == (5, 16, 3, "classes", 3)

    out, meta, infos = read_zip(tmp_path / "out.zip")
    assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
    assert [i.filename for i in infos][-1] == "dataset.json"
    # Sorted by path components: img00, img02, img04 at the top level come before sub/.
    order = ["img00.png", "img02.png", "img04.png", "sub/img01.png", "sub/img03.png"]
    labels_by_src = {name: i % 3 for i, name in enumerate(images)}
    assert meta["labels"] == [[archive_name(i), labels_by_src[n]] for i, n in enumerate(order)]
    for i, name in enumerate(order):
        np.testing.assert_array_equal(out[archive_name(i)], images[name])


def test_folder_dest_has_the_same_layout(tmp_path):
    src = tmp_path / "src"
    make_image_folder(src, n=3, labels=False)
    convert_dataset(src, tmp_path / "out", progress=False)
    files = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert files == ["00000/img00000000.png", "00000/img00000001.png", "00000/img00000002.png", "dataset.json"]
    assert json.loads((tmp_path / "out" / "dataset.json").read_text()) == {"labels": None}
    assert not ImageDataset(tmp_path / "out").has_labels
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_output_is_deterministic(tmp_path):
    src = tmp_path / "src"
    make_image_folder(src, n=4)
    convert_dataset(src, tmp_path / "a.zip", progress=False)
    convert_dataset(src, tmp_path / "b.zip", progress=False)
    with zipfile.ZipFile(tmp_path / "a.zip") as a, zipfile.ZipFile(tmp_path / "b.zip") as b:
        assert a.namelist() == b.namelist()
        assert all(a.read(n) == b.read(n) for n in a.namelist())


def test_every_input_format(tmp_path):
    src = tmp_path / "src"
    yy, xx = np.mgrid[0:8, 0:8]
    arr = np.stack([yy * 30, xx * 30, yy * 15 + xx * 15], axis=-1).astype(np.uint8)  # smooth, so JPEG stays close
    save_image(src / "a.png", arr)
    save_image(src / "b.bmp", arr)
    save_image(src / "c.webp", arr, lossless=True)
    save_image(src / "d.jpg", arr, quality=100)
    (src / "notes.txt").write_text("not an image")
    report = convert_dataset(src, tmp_path / "out.zip", progress=False)
    assert report.count == 4
    out, meta, _ = read_zip(tmp_path / "out.zip")
    for i in range(3):  # lossless formats come through exactly
        np.testing.assert_array_equal(out[archive_name(i)], arr)
    assert np.abs(out[archive_name(3)].astype(int) - arr).mean() < 8  # JPEG is close
    assert meta == {"labels": None}


def test_zip_source_and_official_zip_round_trip(tmp_path):
    src = tmp_path / "src"
    make_image_folder(src, n=4)
    convert_dataset(src, tmp_path / "first.zip", progress=False)
    convert_dataset(tmp_path / "first.zip", tmp_path / "second.zip", progress=False)
    with zipfile.ZipFile(tmp_path / "first.zip") as a, zipfile.ZipFile(tmp_path / "second.zip") as b:
        assert a.namelist() == b.namelist()
        assert all(a.read(n) == b.read(n) for n in a.namelist())


def test_float_vector_labels_are_kept(tmp_path):
    src = tmp_path / "src"
    make_image_folder(src, n=3, labels=False)
    write_labels(src, [["img00.png", [0.5, 1.0]], ["sub/img01.png", [0.0, -2.0]], ["img02.png", [1, 2]]])
    report = convert_dataset(src, tmp_path / "out.zip", progress=False)
    assert (report.label_kind, report.label_dim) == ("vectors", 2)
    _, meta, _ = read_zip(tmp_path / "out.zip")
    assert [label for _, label in meta["labels"]] == [[0.5, 1.0], [1.0, 2.0], [0.0, -2.0]]


def test_label_file_written_with_windows_separators_still_matches(tmp_path):
    src = tmp_path / "src"
    make_image_folder(src, n=2, labels=False)
    write_labels(src, [["img00.png", 1], ["sub\\img01.png", 0]])
    convert_dataset(src, tmp_path / "out.zip", progress=False)
    assert [label for _, label in read_zip(tmp_path / "out.zip")[1]["labels"]] == [1, 0]


# ----------------------------------------------------------------------------------------------- sources


def test_cifar10_tarball(tmp_path):
    tarball = tmp_path / "cifar-10-python.tar.gz"
    images, labels = make_cifar10_tarball(tarball, per_batch=2)
    report = convert_dataset(tarball, tmp_path / "cifar.zip", progress=False)
    assert (report.count, report.resolution, report.channels, report.label_kind) == (10, 32, 3, "classes")
    ds = ImageDataset(tmp_path / "cifar.zip")
    for i in range(10):
        img, label = ds[i]
        np.testing.assert_array_equal(img, images[i].transpose(2, 0, 1))
        assert label.argmax() == labels[i] and label.sum() == 1


def test_cifar10_unpickling_refuses_anything_but_arrays(tmp_path):
    import os
    import pickle
    import tarfile

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    raw = pickle.dumps({"data": Evil(), "labels": []}, protocol=2)
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    from stylegan.errors import StyleGANError
    with pytest.raises(StyleGANError, match="not allowed"):
        convert_dataset(path, tmp_path / "out.zip", progress=False)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_is_padded_to_32_with_labels(tmp_path, gz):
    images_path, images, labels = make_mnist(tmp_path / "mnist", n=4, gz=gz)
    report = convert_dataset(images_path, tmp_path / "mnist.zip", progress=False)
    assert (report.count, report.resolution, report.channels) == (4, 32, 1)
    assert any("padded from 28x28 to 32x32" in note for note in report.notes)
    ds = ImageDataset(tmp_path / "mnist.zip")
    for i in range(4):
        img, label = ds[i]
        expected = np.pad(images[i], 2)
        np.testing.assert_array_equal(img[0], expected)
        assert label.argmax() == labels[i]


def test_mnist_without_labels_file_is_unlabeled(tmp_path):
    images_path, _, _ = make_mnist(tmp_path / "mnist", n=2)
    (tmp_path / "mnist" / "train-labels-idx1-ubyte.gz").unlink()
    report = convert_dataset(images_path, tmp_path / "out.zip", progress=False)
    assert report.label_kind is None and any("unlabeled" in n for n in report.notes)


def test_lsun_lmdb(tmp_path, rng):
    lmdb = pytest.importorskip("lmdb", reason="the optional 'lmdb' package is not installed")
    root = tmp_path / "cat_lmdb"
    arrays = []
    env = lmdb.open(str(root), map_size=1 << 22)
    with env.begin(write=True) as txn:
        for i in range(3):
            arrays.append(random_image(rng, 12, 16))
            buf = io.BytesIO()
            PIL.Image.fromarray(arrays[-1]).save(buf, format="webp", lossless=True)
            txn.put(f"{i:040x}".encode(), buf.getvalue())
        txn.put(b"f" * 40, b"this is not an image")  # sorts last
    env.close()

    from stylegan.errors import StyleGANError
    with pytest.raises(StyleGANError, match="1 of 4 images could not be read"):
        convert_dataset(root, tmp_path / "bad.zip", transform="center-crop", resolution=(8, 8), progress=False)
    report = convert_dataset(root, tmp_path / "cats.zip", transform="center-crop-wide", resolution=(16, 8),
                             resize_filter="box", skip_bad=True, progress=False)
    assert report.count == 3 and len(report.bad) == 1 and report.label_kind is None
    ds = ImageDataset(tmp_path / "cats.zip")
    expected = Transform("center-crop-wide", (16, 8), "box")(arrays[0])
    np.testing.assert_array_equal(ds[0][0], expected.transpose(2, 0, 1))


def test_sklearn_digits(tmp_path):
    sklearn_datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn is not installed")
    digits = sklearn_datasets.load_digits()
    report = convert_dataset("sklearn-digits", tmp_path / "digits", progress=False)
    assert (report.count, report.resolution, report.channels, report.label_dim) == (1797, 8, 1, 10)
    # 1,797 images fill folder 00000 and part of 00001.
    assert len(list((tmp_path / "digits" / "00000").iterdir())) == 1000
    assert len(list((tmp_path / "digits" / "00001").iterdir())) == 797
    ds = ImageDataset(tmp_path / "digits")
    for i in (0, 1, 1000, 1796):
        img, label = ds[i]
        np.testing.assert_array_equal(img[0], np.rint(digits.images[i] * 255 / 16).astype(np.uint8))
        assert label.argmax() == digits.target[i]
    full = int(np.argmax(digits.images.reshape(len(digits.images), -1).max(axis=1) == 16))
    assert ds[full][0].max() == 255 and ds[full][0].min() == 0  # 0..16 spans 0..255


@pytest.mark.parametrize("resize_filter", ["box", "lanczos"])
def test_sklearn_digits_upscaled_to_32(tmp_path, resize_filter):
    pytest.importorskip("sklearn")
    report = convert_dataset("sklearn-digits", tmp_path / "d.zip", resolution=(32, 32), max_images=20,
                             resize_filter=resize_filter, progress=False)
    assert (report.count, report.resolution) == (20, 32)
    ds = ImageDataset(tmp_path / "d.zip")
    small = ImageDataset(tmp_path / "d.zip")[0][0]
    assert ds.resolution == 32 and small.shape == (1, 32, 32)
    if resize_filter == "box":  # a 4x box upscale repeats every pixel in a 4x4 block
        blocks = small[0].reshape(8, 4, 8, 4)
        assert (blocks == blocks[:, :1, :, :1]).all()


# ----------------------------------------------------------------------------------------------- options


def test_max_images(tmp_path):
    src = tmp_path / "src"
    make_image_folder(src, n=6)
    report = convert_dataset(src, tmp_path / "out.zip", max_images=2, progress=False)
    assert report.count == 2
    _, meta, _ = read_zip(tmp_path / "out.zip")
    assert len(meta["labels"]) == 2


def test_center_crop_takes_the_middle_square(tmp_path, rng):
    src = tmp_path / "src"
    arr = random_image(rng, 8, 12)
    save_image(src / "a.png", arr)
    convert_dataset(src, tmp_path / "out.zip", transform="center-crop", resolution=(8, 8), progress=False)
    out, _, _ = read_zip(tmp_path / "out.zip")
    np.testing.assert_array_equal(out[archive_name(0)], arr[:, 2:10])


def test_center_crop_wide_canvas_and_too_small_images(tmp_path, rng):
    src = tmp_path / "src"
    arr = random_image(rng, 12, 16)   # 16 wide: band of round(16 * 12 / 16) = 12 rows
    save_image(src / "a.png", arr)
    save_image(src / "b.png", random_image(rng, 12, 8))  # narrower than 16: left out
    report = convert_dataset(src, tmp_path / "out.zip", transform="center-crop-wide", resolution=(16, 8),
                             resize_filter="box", progress=False)
    assert report.count == 1 and report.too_small == 1 and any("center-crop-wide" in n for n in report.notes)
    out, _, _ = read_zip(tmp_path / "out.zip")
    img = out[archive_name(0)]
    assert img.shape == (16, 16, 3)
    assert not img[:4].any() and not img[12:].any()  # black bars above and below the 16x8 band
    band = np.asarray(PIL.Image.fromarray(arr).resize((16, 8), PIL.Image.Resampling.BOX))
    np.testing.assert_array_equal(img[4:12], band)


@pytest.mark.parametrize("height, band_top, band_rows", [
    (16, 4, 8),   # 16 * 16 / 32 = 8 rows, from row (16 - 8) // 2 = 4
    (17, 4, 8),   # 8.5 rounds half to even: 8 rows (9 if rounded up), from row (17 - 8) // 2 = 4
    (33, 8, 16),  # 16.5 -> 16 rows (17 if rounded up), from row 8, halved in height by the resize
])
def test_center_crop_wide_pixels_match_a_direct_computation(rng, height, band_top, band_rows):
    # The expected band is planted in a random 32-wide image as `small` (8 rows x 16 columns) with every
    # pixel repeated 2 times across and band_rows / 8 times down, so the box resize of exactly that band
    # to 16x8 gives `small` back with no rounding; any other band (offset or row count) picks up noise.
    small = rng.randint(0, 256, size=(8, 16, 3)).astype(np.uint8)
    image = rng.randint(0, 256, size=(height, 32, 3)).astype(np.uint8)
    image[band_top:band_top + band_rows] = np.repeat(np.repeat(small, band_rows // 8, axis=0), 2, axis=1)
    out = Transform("center-crop-wide", (16, 8), "box")(image)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert not out[:4].any() and not out[12:].any()  # (16 - 8) // 2 = 4 black rows above, 4 below
    np.testing.assert_array_equal(out[4:12], small)


def test_center_crop_wide_leaves_out_narrow_and_short_images(rng):
    wide = Transform("center-crop-wide", (16, 8), "box")
    assert wide(rng.randint(0, 256, size=(16, 15, 3)).astype(np.uint8)) is None  # narrower than 16
    assert wide(rng.randint(0, 256, size=(7, 16, 3)).astype(np.uint8)) is None   # band of 7 rows < 8
    assert wide(rng.randint(0, 256, size=(8, 16, 3)).astype(np.uint8)).shape == (16, 16, 3)


def test_center_crop_of_odd_surplus_keeps_the_extra_column_at_the_end(rng):
    image = rng.randint(0, 256, size=(8, 11, 1)).astype(np.uint8)  # 3 spare columns: 1 before, 2 after
    np.testing.assert_array_equal(Transform("center-crop", (8, 8))(image), image[:, 1:9])


def test_grayscale_center_crop(tmp_path):
    images_path, images, _ = make_mnist(tmp_path / "mnist", n=2)
    report = convert_dataset(images_path, tmp_path / "out.zip", transform="center-crop", resolution=(16, 16),
                             resize_filter="box", progress=False)
    assert (report.resolution, report.channels) == (16, 1)
    out, _, _ = read_zip(tmp_path / "out.zip")
    padded = np.pad(images[1], 2)
    box_mean = padded.reshape(16, 2, 16, 2).mean(axis=(1, 3))
    assert np.abs(out[archive_name(1)] - box_mean).max() <= 1  # a 2x2 box average (Pillow uses fixed point)


def test_resolution_without_transform_resizes(tmp_path, rng):
    src = tmp_path / "src"
    save_image(src / "a.png", random_image(rng, 16, 16))
    save_image(src / "b.png", random_image(rng, 64, 64))
    report = convert_dataset(src, tmp_path / "out.zip", resolution=(32, 32), progress=False)
    assert (report.count, report.resolution) == (2, 32)


def test_rgba_is_converted_to_rgb_with_a_note_or_kept(tmp_path, rng):
    src = tmp_path / "src"
    rgba = random_image(rng, 8, 8, 4)
    save_image(src / "a.png", rgba)
    report = convert_dataset(src, tmp_path / "rgb.zip", progress=False)
    assert report.channels == 3 and report.alpha_dropped == 1
    assert any("set channels (--channels) to 4 to keep it" in n for n in report.notes)
    np.testing.assert_array_equal(read_zip(tmp_path / "rgb.zip")[0][archive_name(0)], rgba[:, :, :3])
    report = convert_dataset(src, tmp_path / "rgba.zip", channels=4, progress=False)
    assert report.channels == 4 and not report.notes
    np.testing.assert_array_equal(read_zip(tmp_path / "rgba.zip")[0][archive_name(0)], rgba)


def test_grayscale_stays_grayscale_and_channels_can_be_forced(tmp_path, rng):
    src = tmp_path / "src"
    save_image(src / "gray.png", random_image(rng, 8, 8, 1))
    save_image(src / "rgb.png", random_image(rng, 8, 8, 3))
    report = convert_dataset(src, tmp_path / "rgb.zip", channels=3, progress=False)
    assert report.channels == 3
    report = convert_dataset(src, tmp_path / "gray.zip", channels=1, progress=False)
    assert report.channels == 1
    assert ImageDataset(tmp_path / "gray.zip").num_channels == 1


def test_palette_and_16_bit_images(tmp_path, rng):
    src = tmp_path / "src"
    src.mkdir()
    palette = PIL.Image.fromarray(random_image(rng, 8, 8)).quantize(16)
    palette.save(src / "a.png")
    gray16 = (random_image(rng, 8, 8, 1).astype(np.uint16) * 257)
    PIL.Image.fromarray(gray16).save(src / "b.png")
    report = convert_dataset(src, tmp_path / "rgb.zip", channels=3, progress=False)
    out, _, _ = read_zip(tmp_path / "rgb.zip")
    np.testing.assert_array_equal(out[archive_name(0)], np.asarray(palette.convert("RGB")))
    np.testing.assert_array_equal(out[archive_name(1)][:, :, 0], (gray16 >> 8).astype(np.uint8))
    assert report.count == 2


def test_skip_bad_drops_corrupt_files_and_reports_them(tmp_path):
    src = tmp_path / "src"
    make_image_folder(src, n=4)
    (src / "img00.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    data = (src / "img02.png").read_bytes()
    (src / "img02.png").write_bytes(data[: len(data) // 2])  # truncated
    report = convert_dataset(src, tmp_path / "out.zip", skip_bad=True, progress=False)
    assert report.count == 2 and sorted(n for n, _ in report.bad) == ["img00.png", "img02.png"]
    assert any("skipped 2 unreadable image(s)" in n for n in report.notes)
    _, meta, _ = read_zip(tmp_path / "out.zip")
    assert [label for _, label in meta["labels"]] == [1, 0]  # labels of sub/img01 and sub/img03


def test_overwrite_replaces_an_existing_zip(tmp_path):
    src = tmp_path / "src"
    make_image_folder(src, n=2)
    convert_dataset(src, tmp_path / "out.zip", progress=False)
    convert_dataset(src, tmp_path / "out.zip", max_images=1, overwrite=True, progress=False)
    assert len(read_zip(tmp_path / "out.zip")[0]) == 1


def test_dest_parent_folders_are_created(tmp_path):
    src = tmp_path / "src"
    make_image_folder(src, n=1)
    convert_dataset(src, tmp_path / "a" / "b" / "out.zip", progress=False)
    assert (tmp_path / "a" / "b" / "out.zip").is_file()
