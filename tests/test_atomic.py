"""Atomic writes: the file appears whole with the usual permissions, or not at all."""

import os

import pytest

from stylegan.atomic import atomic_path


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_success_replaces_with_usual_permissions_even_if_the_writer_recreates_the_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with atomic_path(target) as tmp:
        os.unlink(tmp)  # like safetensors: the writer makes a fresh (private) file at the path
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"new")
        os.close(fd)
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask()
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_pngs_and_network_files_get_the_usual_permissions(tmp_path):
    import numpy as np
    import stylegan
    from stylegan.explore.images import save_png
    png = save_png(np.zeros([4, 4, 3], dtype=np.uint8), tmp_path / "a.png")
    net = tmp_path / "n.safetensors"
    stylegan.save_network(stylegan.load_network("default"), net)
    for path in (png, net):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask()
