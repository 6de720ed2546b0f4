"""Shared option helpers: device resolution and the output directory guard."""

from __future__ import annotations

import pytest
import torch

from stylegan.cli.options import DeviceType, prepared_outdir
from stylegan.devices import mps_available
from stylegan.errors import StyleGANError


def device(text):
    """What ``--device TEXT`` turns into."""
    return DeviceType().convert(text, None, None)


def test_device_names():
    assert device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    assert device("auto").type == expected
    assert device(" CPU ") == torch.device("cpu")
    for bad in ("gpu", "cuda:x", "cuda:", "cpu:0", ""):
        with pytest.raises(StyleGANError, match="^--device: unknown device") as info:
            device(bad)
        assert "cuda:N" in info.value.fix


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_unavailable_devices_are_named_by_the_flag():
    with pytest.raises(StyleGANError, match="^--device cuda:1: CUDA is not available here") as info:
        device("cuda:1")
    assert info.value.fix == "use --device auto or cpu"


def test_outdir_is_created_and_kept_on_success(tmp_path):
    with prepared_outdir(tmp_path / "a" / "b") as out:
        (out / "x.png").write_bytes(b"x")
    assert (tmp_path / "a" / "b" / "x.png").exists()


def test_outdirs_made_for_a_failed_run_are_removed(tmp_path):
    (tmp_path / "kept").mkdir()
    with pytest.raises(StyleGANError):
        with prepared_outdir(tmp_path / "kept" / "new" / "deeper"):
            raise StyleGANError("boom")
    assert [p.name for p in tmp_path.iterdir()] == ["kept"] and not any((tmp_path / "kept").iterdir())


def test_a_failed_run_keeps_directories_that_hold_files(tmp_path):
    with pytest.raises(RuntimeError):
        with prepared_outdir(tmp_path / "new") as out:
            (out / "done.png").write_bytes(b"x")
            raise RuntimeError
    assert (tmp_path / "new" / "done.png").exists()
