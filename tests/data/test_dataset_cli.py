"""`stylegan dataset` on the command line: click's CliRunner on the command, and exit codes through main."""

from __future__ import annotations

import errno
import os
import zipfile

import pytest
from click.testing import CliRunner

import stylegan.cli as cli_module
from stylegan.cli.dataset import dataset
from stylegan.data import ImageDataset
from stylegan.errors import StyleGANError

from .conftest import make_image_folder, random_image, save_image


@pytest.fixture
def stylegan_main(capsys):
    """``stylegan_main("dataset", ...)`` → (exit code, stdout, stderr) through the real entry point."""

    def run(*args):
        code = cli_module.main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_command_is_named_dataset():
    assert dataset.name == "dataset"
    names = {p.name for p in dataset.params}
    assert {"source", "dest", "max_images", "transform", "resolution", "resize_filter", "channels", "skip_bad",
            "overwrite", "quiet"} <= names


def test_cli_converts_and_summarises(tmp_path):
    make_image_folder(tmp_path / "src", n=3)
    result = CliRunner().invoke(dataset, ["--source", str(tmp_path / "src"), "--dest", str(tmp_path / "out.zip"),
                                          "--resolution", "8x8", "--resize-filter", "box", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "wrote 3 images (8x8, 3 channels, 3 classes)" in result.stdout
    assert ImageDataset(tmp_path / "out.zip").resolution == 8


def test_cli_prints_notes_on_stderr(tmp_path, rng):
    save_image(tmp_path / "src" / "a.png", random_image(rng, 8, 8, 4))
    result = CliRunner().invoke(dataset, ["--source", str(tmp_path / "src"), "--dest", str(tmp_path / "o"), "--quiet"])
    assert result.exit_code == 0
    assert "note: 1 image(s) had an alpha channel" in result.stderr
    result = CliRunner().invoke(dataset, ["--source", str(tmp_path / "src"), "--dest", str(tmp_path / "o4"),
                                          "--channels", "4", "--quiet"])
    assert "4 channels" in result.stdout


def test_cli_sklearn_digits_at_32(tmp_path):
    pytest.importorskip("sklearn")
    result = CliRunner().invoke(dataset, ["--source", "sklearn-digits", "--dest", str(tmp_path / "d.zip"),
                                          "--resolution", "32x32", "--max-images", "10", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "wrote 10 images (32x32, 1 channel, 10 classes)" in result.stdout


def test_cli_errors_surface_as_styleganerror(tmp_path):
    result = CliRunner().invoke(dataset, ["--source", str(tmp_path / "missing"), "--dest", str(tmp_path / "o.zip")])
    assert isinstance(result.exception, StyleGANError)


@pytest.mark.parametrize("args, message", [
    (["--resolution", "big"], "resolution (--resolution) 'big' is not WIDTHxHEIGHT"),
    (["--resolution", "48x48"], "power-of-two"),
    (["--transform", "center-crop"], "needs an output size"),
    (["--max-images", "0"], "--max-images"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, stylegan_main, args, message):
    make_image_folder(tmp_path / "src", n=1)
    code, out, err = stylegan_main("dataset", "--source", tmp_path / "src", "--dest", tmp_path / "o.zip", *args)
    assert code == 2 and message in err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "o.zip").exists()


def test_bad_inputs_exit_2_and_leave_nothing(tmp_path, stylegan_main, rng):
    (tmp_path / "empty").mkdir()
    code, _, err = stylegan_main("dataset", "--source", tmp_path / "empty", "--dest", tmp_path / "o.zip")
    assert code == 2 and "has no images" in err and err.count("\n") == 1

    save_image(tmp_path / "mixed" / "a.png", random_image(rng, 8, 8))
    save_image(tmp_path / "mixed" / "b.png", random_image(rng, 16, 16))
    code, _, err = stylegan_main("dataset", "--source", tmp_path / "mixed", "--dest", tmp_path / "o.zip", "--quiet")
    assert code == 2 and "all images must be the same size" in err

    (tmp_path / "mixed" / "b.png").write_bytes(b"broken")
    code, _, err = stylegan_main("dataset", "--source", tmp_path / "mixed", "--dest", tmp_path / "o.zip", "--quiet")
    assert code == 2 and "1 of 2 images could not be read" in err
    assert "turn on skip_bad (--skip-bad) to leave them out" in err
    code, out, _ = stylegan_main("dataset", "--source", tmp_path / "mixed", "--dest", tmp_path / "o.zip", "--quiet",
                                 "--skip-bad")
    assert code == 0 and "wrote 1 image (8x8" in out
    with zipfile.ZipFile(tmp_path / "o.zip") as z:
        assert z.namelist() == ["00000/img00000000.png", "dataset.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "mixed", "o.zip"]


def test_overwrite_on_the_command_line(tmp_path, stylegan_main, monkeypatch):
    """--overwrite: refused without it, all-or-nothing with it."""
    make_image_folder(tmp_path / "src", n=2)
    dest = tmp_path / "out.zip"
    dest.write_bytes(b"an older dataset")
    args = ("dataset", "--source", tmp_path / "src", "--dest", dest, "--quiet")

    # Without --overwrite an existing --dest is refused with one line and left alone.
    code, out, err = stylegan_main(*args)
    assert code == 2 and out == ""
    assert err == (f"error: dest (--dest) {dest} already exists "
                   "(choose a new name, or turn on overwrite (--overwrite) to replace it)\n")
    assert dest.read_bytes() == b"an older dataset"

    # A run whose disk fills up half-way keeps the old file, leaves no temporary file, and says so in one line.
    real_writestr = zipfile.ZipFile.writestr
    calls = []

    def disk_full_on_second(self, name, data, *a, **kw):
        calls.append(name)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_writestr(self, name, data, *a, **kw)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", disk_full_on_second)
    code, out, err = stylegan_main(*args, "--overwrite")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: cannot write dest (--dest) {dest}: {os.strerror(errno.ENOSPC)}")
    assert dest.read_bytes() == b"an older dataset"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zip", "src"]
    monkeypatch.undo()

    # With --overwrite it is replaced by the new dataset.
    code, out, err = stylegan_main(*args, "--overwrite")
    assert code == 0 and err == "" and "wrote 2 images" in out
    assert len(ImageDataset(dest)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zip", "src"]
