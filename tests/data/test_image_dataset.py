"""The dataset reader: images and labels, subsets and mirrors, workers, and dataset-vs-network checks."""

from __future__ import annotations

import pickle
import shutil
import zipfile

import numpy as np
import pytest
import torch

import stylegan.data.images as images_module
from stylegan.data import ImageDataset, check_dataset_fits, convert_dataset, dataset_fingerprint, require_labels
from stylegan.data.dataset import item_table, one_hot, subset_indices
from stylegan.errors import StyleGANError

from .conftest import make_image_folder, random_image, save_image, write_labels


@pytest.fixture
def labeled_zip(tmp_path):
    """A 6-image 16×16 RGB dataset ZIP with classes 0,1,2,0,1,2 (in output order) and its source pixels."""
    src = tmp_path / "src"
    images = make_image_folder(src, n=6)
    order = sorted(images, key=lambda n: n.split("/"))
    labels = {n: i % 3 for i, n in enumerate(images)}
    convert_dataset(src, tmp_path / "data.zip", progress=False)
    return tmp_path / "data.zip", [images[n] for n in order], [labels[n] for n in order]


def test_properties_and_items(labeled_zip):
    path, pixels, classes = labeled_zip
    ds = ImageDataset(path)
    assert len(ds) == 6 and ds.name == "data"
    assert (ds.resolution, ds.num_channels, ds.label_dim, ds.label_shape) == (16, 3, 3, [3])
    assert ds.has_labels and ds.has_onehot_labels and ds.image_shape == [3, 16, 16]
    for i in range(6):
        img, label = ds[i]
        assert img.dtype == np.uint8 and img.shape == (3, 16, 16)
        np.testing.assert_array_equal(img, pixels[i].transpose(2, 0, 1))
        assert label.dtype == np.float32 and label.tolist() == np.eye(3)[classes[i]].tolist()


def test_folder_and_zip_read_the_same(labeled_zip, tmp_path):
    path, _, _ = labeled_zip
    with zipfile.ZipFile(path) as z:
        z.extractall(tmp_path / "folder")
    a, b = ImageDataset(path), ImageDataset(tmp_path / "folder")
    assert len(a) == len(b) and b.name == "folder"
    for i in range(len(a)):
        np.testing.assert_array_equal(a[i][0], b[i][0])
        np.testing.assert_array_equal(a[i][1], b[i][1])


def test_use_labels_off_and_unlabeled_datasets(labeled_zip, tmp_path):
    path, _, _ = labeled_zip
    ds = ImageDataset(path, use_labels=False)
    assert not ds.has_labels and ds.label_shape == [0] and ds[0][1].shape == (0,)
    make_image_folder(tmp_path / "plain", n=2, labels=False)
    plain = ImageDataset(tmp_path / "plain")
    assert not plain.has_labels and plain.label_dim == 0


def test_float_vector_labels_are_returned_as_stored(tmp_path):
    src = tmp_path / "src"
    make_image_folder(src, n=2, labels=False)
    write_labels(src, [["img00.png", [0.25, -1.0, 3.0]], ["sub/img01.png", [1, 2, 3]]])
    ds = ImageDataset(src)
    assert not ds.has_onehot_labels and ds.label_shape == [3]
    assert ds[0][1].tolist() == [0.25, -1.0, 3.0] and ds[1][1].dtype == np.float32


def test_xflip_appends_mirrored_copies(labeled_zip):
    path, pixels, classes = labeled_zip
    ds = ImageDataset(path, xflip=True)
    assert len(ds) == 12
    for i in range(6):
        np.testing.assert_array_equal(ds[6 + i][0], ds[i][0][:, :, ::-1])
        np.testing.assert_array_equal(ds[6 + i][1], ds[i][1])
        assert ds.is_flipped(6 + i) and not ds.is_flipped(i)
    assert ds[6][0].flags.c_contiguous


# (images, max_size, random_seed) -> the images the official stylegan2-ada-pytorch reader keeps, measured by
# running its training/dataset.py Dataset (xflip=True) outside this repository. Its mirrored half repeats
# these indices in the same order with xflip set.
OFFICIAL_SUBSETS = {
    (6, 3, 1): [1, 2, 4],
    (6, 3, 2): [1, 3, 4],
    (10, 4, 0): [2, 4, 8, 9],
    (10, 4, 123): [0, 4, 5, 7],
    (25, 7, 5): [2, 10, 17, 18, 19, 21, 24],
    (100, 10, 0): [2, 16, 26, 54, 55, 73, 75, 86, 93, 95],
    (1000, 5, 42): [411, 521, 660, 737, 740],
    (12, 12, 3): list(range(12)),
}


@pytest.mark.parametrize("case", sorted(OFFICIAL_SUBSETS))
def test_subset_and_mirror_table_match_the_official_reader(case):
    count, max_size, seed = case
    kept = OFFICIAL_SUBSETS[case]
    assert subset_indices(count, max_size, seed).tolist() == kept
    assert item_table(count, max_size, seed, mirror=True) == [(i, False) for i in kept] + [(i, True) for i in kept]
    assert item_table(count, max_size, seed, mirror=False) == [(i, False) for i in kept]


def test_no_max_size_keeps_every_image_in_order():
    assert subset_indices(5, None, 7).tolist() == [0, 1, 2, 3, 4]
    assert item_table(3, None, 0, mirror=True) == [(0, False), (1, False), (2, False),
                                                   (0, True), (1, True), (2, True)]


def test_max_size_is_a_seeded_sorted_subset(labeled_zip):
    path, pixels, _ = labeled_zip
    a = ImageDataset(path, max_size=3, random_seed=1)
    b = ImageDataset(path, max_size=3, random_seed=1)
    c = ImageDataset(path, max_size=3, random_seed=2)
    picked = [a.raw_index(i) for i in range(3)]
    assert picked == sorted(picked) and picked == [b.raw_index(i) for i in range(3)]
    assert picked != [c.raw_index(i) for i in range(3)]
    assert picked == OFFICIAL_SUBSETS[(6, 3, 1)]
    for i, raw in enumerate(picked):
        np.testing.assert_array_equal(a[i][0], pixels[raw].transpose(2, 0, 1))
    assert len(ImageDataset(path, max_size=100)) == 6
    assert len(ImageDataset(path, max_size=2, xflip=True)) == 4


def test_one_hot():
    assert one_hot(2, 4).tolist() == [0.0, 0.0, 1.0, 0.0] and one_hot(0, 1).dtype == np.float32


def test_grayscale_dataset_has_one_channel(tmp_path, rng):
    save_image(tmp_path / "g" / "a.png", random_image(rng, 8, 8, 1))
    ds = ImageDataset(tmp_path / "g")
    assert ds.num_channels == 1 and ds[0][0].shape == (1, 8, 8)


def test_items_collate_without_the_non_writable_array_warning(tmp_path, rng):
    # Grayscale decodes to a read-only buffer whose CHW view needs no copy: the case that used to warn.
    for i in range(4):
        save_image(tmp_path / "g" / f"{i}.png", random_image(rng, 8, 8, 1))
    ds = ImageDataset(tmp_path / "g", xflip=True)
    assert all(ds[i][0].flags.writeable for i in range(len(ds)))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images, _ = next(iter(torch.utils.data.DataLoader(ds, batch_size=8)))
    assert images.shape == (8, 1, 8, 8)


@pytest.mark.parametrize("use_pyspng", [True, False])
def test_png_decoding_with_and_without_pyspng(labeled_zip, monkeypatch, use_pyspng):
    if use_pyspng:
        pytest.importorskip("pyspng", reason="the optional pyspng package is not installed")
    else:
        monkeypatch.setattr(images_module, "pyspng", None)
    path, pixels, _ = labeled_zip
    ds = ImageDataset(path)
    np.testing.assert_array_equal(ds[5][0], pixels[5].transpose(2, 0, 1))


def test_pickling_drops_the_open_zip(labeled_zip):
    path, _, _ = labeled_zip
    ds = ImageDataset(path)
    ds[0]
    copy = pickle.loads(pickle.dumps(ds))
    assert copy._archive is None
    np.testing.assert_array_equal(copy[3][0], ds[3][0])
    ds.close()
    np.testing.assert_array_equal(ds[3][0], copy[3][0])  # reopens after close


def test_dataloader_workers_read_correct_images(labeled_zip):
    path, pixels, _ = labeled_zip
    ds = ImageDataset(path, xflip=True)
    ds[0]  # open the ZIP in the parent first: each worker must not reuse that handle
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    got = torch.cat([img for img, _ in loader]).numpy()
    expected = np.stack([ds[i][0] for i in range(len(ds))])
    np.testing.assert_array_equal(got, expected)


def test_zip_is_reopened_in_a_new_process(labeled_zip, monkeypatch):
    import os

    ds = ImageDataset(labeled_zip[0])
    parent_zip = ds._open_archive()
    assert ds._open_archive() is parent_zip
    pid = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: pid + 1)  # as seen from a forked DataLoader worker
    assert ds._open_archive() is not parent_zip


# ----------------------------------------------------------------------------------------------- errors


def one_line(info) -> str:
    text = str(info.value)
    assert "\n" not in text and info.value.fix
    return text


def test_missing_empty_and_wrong_paths(tmp_path):
    with pytest.raises(StyleGANError, match="does not exist") as info:
        ImageDataset(tmp_path / "nope.zip")
    one_line(info)
    (tmp_path / "empty").mkdir()
    with pytest.raises(StyleGANError, match="has no images"):
        ImageDataset(tmp_path / "empty")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(StyleGANError, match="neither a folder nor a .zip"):
        ImageDataset(tmp_path / "x.txt")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(StyleGANError, match="not a readable ZIP"):
        ImageDataset(tmp_path / "broken.zip")


def test_requested_resolution_must_match(labeled_zip):
    path, _, _ = labeled_zip
    with pytest.raises(StyleGANError, match="16x16 images but resolution 32 was asked for") as info:
        ImageDataset(path, resolution=32)
    assert "--resolution 32x32" in one_line(info)
    assert ImageDataset(path, resolution=16).resolution == 16


def test_non_square_images_are_refused(tmp_path, rng):
    save_image(tmp_path / "d" / "a.png", random_image(rng, 8, 16))
    with pytest.raises(StyleGANError, match="16x8 images"):
        ImageDataset(tmp_path / "d")


def test_an_odd_image_is_reported_when_read(tmp_path, rng):
    save_image(tmp_path / "d" / "a.png", random_image(rng, 8, 8))
    save_image(tmp_path / "d" / "b.png", random_image(rng, 16, 16))
    ds = ImageDataset(tmp_path / "d")
    with pytest.raises(StyleGANError, match="b.png is 16x16 with 3 channel.*a.png is 8x8") as info:
        ds[1]
    one_line(info)


def test_a_corrupt_image_is_reported_when_read(tmp_path, rng):
    save_image(tmp_path / "d" / "a.png", random_image(rng, 8, 8))
    (tmp_path / "d" / "b.png").write_bytes(b"junk")
    ds = ImageDataset(tmp_path / "d")
    with pytest.raises(StyleGANError, match="cannot read b.png"):
        ds[1]


def test_labels_that_do_not_match_the_images(labeled_zip, tmp_path):
    path, _, _ = labeled_zip
    shutil.unpack_archive(path, tmp_path / "folder")
    write_labels(tmp_path / "folder", [["00000/img00000000.png", 1]])
    with pytest.raises(StyleGANError, match=r"5 of 6 image\(s\) have no label") as info:
        ImageDataset(tmp_path / "folder")
    one_line(info)
    assert not ImageDataset(tmp_path / "folder", use_labels=False).has_labels


def test_check_dataset_fits_names_both_sides(labeled_zip):
    ds = ImageDataset(labeled_zip[0])
    check_dataset_fits(ds, img_resolution=16, img_channels=3, c_dim=3)
    check_dataset_fits(ds, img_resolution=16, img_channels=3, c_dim=0)  # unconditional nets ignore labels
    with pytest.raises(StyleGANError) as info:
        check_dataset_fits(ds, img_resolution=64, img_channels=1, c_dim=10)
    text = one_line(info)
    assert "16x16, 3 channels, label_dim 3" in text and "64x64, 1 channel, c_dim 10" in text
    assert "resolution 16 vs 64" in text and "channels 3 vs 1" in text and "labels: 3 vs c_dim 10" in text
    assert "--resolution 64x64 --channels 1" in text


def test_conditional_network_needs_labels(labeled_zip):
    ds = ImageDataset(labeled_zip[0], use_labels=False)
    with pytest.raises(StyleGANError, match="labels: none vs c_dim 3") as info:
        check_dataset_fits(ds, 16, 3, 3)
    assert "labeled dataset or an unconditional network" in one_line(info)


def test_require_labels(labeled_zip, tmp_path):
    require_labels(ImageDataset(labeled_zip[0]))
    with pytest.raises(StyleGANError, match=r"^cond \(--cond\) needs labels, but dataset data has none") as info:
        require_labels(ImageDataset(labeled_zip[0], use_labels=False))
    one_line(info)
    make_image_folder(tmp_path / "plain", n=1, labels=False)
    with pytest.raises(StyleGANError, match="no labels in dataset.json"):
        require_labels(ImageDataset(tmp_path / "plain"))


# ----------------------------------------------------------------------------------------------- fingerprint


def test_fingerprint_of_a_zip_follows_content(labeled_zip, tmp_path):
    path, _, _ = labeled_zip
    fp = dataset_fingerprint(path)
    assert len(fp) == 32 and fp == dataset_fingerprint(path)
    shutil.copy(path, tmp_path / "copy.zip")
    assert dataset_fingerprint(tmp_path / "copy.zip") == fp  # a copy is the same dataset
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "edited.zip", "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "dataset.json":
                data = data.replace(b'", 0]', b'", 2]', 1)
            dst.writestr(info, data)
    assert dataset_fingerprint(tmp_path / "edited.zip") != fp


def test_fingerprint_of_a_folder(tmp_path):
    make_image_folder(tmp_path / "d", n=3)
    fp = dataset_fingerprint(tmp_path / "d")
    (tmp_path / "d" / "README.txt").write_text("not part of the data")
    assert dataset_fingerprint(tmp_path / "d") == fp
    write_labels(tmp_path / "d", [["img00.png", 1], ["sub/img01.png", 1], ["img02.png", 1]])
    fp2 = dataset_fingerprint(tmp_path / "d")
    assert fp2 != fp
    (tmp_path / "d" / "img02.png").unlink()
    assert dataset_fingerprint(tmp_path / "d") != fp2
    with pytest.raises(StyleGANError, match="does not exist"):
        dataset_fingerprint(tmp_path / "nope")


class _SignalHandlers(torch.utils.data.Dataset):
    def __len__(self):
        return 1

    def __getitem__(self, i):
        import signal

        from stylegan.data.dataset import STOP_SIGNALS
        return [signal.getsignal(sig) == signal.SIG_IGN for sig in STOP_SIGNALS]


def test_loader_workers_leave_stop_signals_to_the_main_process():
    from stylegan.data import leave_stop_signals_to_the_main_process
    from stylegan.data.dataset import STOP_SIGNALS
    assert len(STOP_SIGNALS) == 3  # SIGINT, SIGTERM, SIGHUP on this POSIX machine
    loader = torch.utils.data.DataLoader(_SignalHandlers(), num_workers=1, batch_size=None,
                                         worker_init_fn=leave_stop_signals_to_the_main_process)
    assert list(loader) == [[True] * 3]
    assert list(torch.utils.data.DataLoader(_SignalHandlers(), num_workers=1, batch_size=None)) == [[False] * 3]


def test_repeated_member_names_are_refused(tmp_path):
    """Which copy of a repeated name a reader gets depends on the reader: such a ZIP is refused by name."""
    import io
    import warnings

    import PIL.Image

    buf = io.BytesIO()
    PIL.Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate it writes
        with zipfile.ZipFile(tmp_path / "dup.zip", "w") as z:
            z.writestr("a.png", buf.getvalue())
            z.writestr("a.png", buf.getvalue())
    with pytest.raises(StyleGANError, match="holds two members named 'a.png'"):
        ImageDataset(tmp_path / "dup.zip")
    with pytest.raises(StyleGANError, match="holds two members named 'a.png'"):
        dataset_fingerprint(tmp_path / "dup.zip")


def test_class_labels_past_the_limit_are_refused(tmp_path):
    make_image_folder(tmp_path / "d", n=2, labels=False)
    write_labels(tmp_path / "d", [["img00.png", 0], ["sub/img01.png", 10**12]])
    with pytest.raises(StyleGANError, match="over the limit of 100000 classes"):
        ImageDataset(tmp_path / "d")
    assert ImageDataset(tmp_path / "d", use_labels=False).label_dim == 0
