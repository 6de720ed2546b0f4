"""Hostile datasets, dataset-tool sources, projection targets, projected ws and reference statistics.

Each file is built here from a few lines (compression bombs included: a 5 MB deflate stream that inflates
to 5 GB, more than the 4 GiB address space the commands run under) and handed to the command a user would
run. Every one must end in exit 2 with one ``error:`` line, and leave nothing half-written.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import struct
import tarfile
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from tests.hostile.harness import run_refused

FIVE_GB = 5 * 2**30
NETWORK = "default"  # the built-in 32x32 grayscale network, c_dim 10


# ------------------------------------------------------------------------------------------------- builders


@lru_cache(maxsize=1)
def zeros_deflate(total: int = FIVE_GB) -> bytes:
    """A raw deflate stream of about ``total`` zero bytes, about 1/1000 of that in size, made in milliseconds:
    zlib's output for 1 MiB of zeros with its longest run of one repeated byte (each byte there stands for
    four "258 bytes again" codes) stretched."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = c.compress(bytes(2**20)) + c.flush()
    runs = [(len(list(group)), byte) for byte, group in itertools.groupby(raw)]
    longest = max(range(len(runs)), key=lambda i: runs[i][0])
    pos = sum(n for n, _ in runs[:longest])
    extra = max(0, (total - 2**20) // 1032)
    return raw[:pos] + raw[pos:pos + 1] * extra + raw[pos:]


def test_the_bomb_really_inflates():
    d = zlib.decompressobj(-15)
    head = d.decompress(zeros_deflate()[:200_000], 64 * 2**20)
    assert len(head) == 64 * 2**20 and not head.strip(b"\0")  # and it keeps going, for 5 GB
    assert len(zeros_deflate()) < 6 * 2**20


def gzip_of(deflated: bytes, crc: int = 0, size: int = 0) -> bytes:
    """One gzip member around a raw deflate stream."""
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + deflated + struct.pack("<2L", crc, size & 0xFFFFFFFF)


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def open_deflate(data: bytes) -> bytes:
    """A raw deflate stream of ``data`` left open (no final block), so another stream can follow it."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)


def zip_bytes(members: list[tuple]) -> bytes:
    """A ZIP from ``(name, stored_bytes, method, declared_size, crc[, declared_stored_size])`` members, written
    by hand so that sizes and names can be whatever a hostile file says (method 0 stored, 8 deflated)."""
    out, central = io.BytesIO(), []
    for name, data, method, size, crc, *csize in members:
        offset, encoded, csize = out.tell(), name.encode(), csize[0] if csize else len(data)
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, csize, size,
                              len(encoded), 0) + encoded + data)
        central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, csize, size,
                                   len(encoded), 0, 0, 0, 0, 0, offset) + encoded)
    start = out.tell()
    out.write(b"".join(central))
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(central), len(central), out.tell() - start, start, 0))
    return out.getvalue()


def stored(name: str, data: bytes) -> tuple:
    return (name, data, 0, len(data), zlib.crc32(data))


def deflated(name: str, data: bytes) -> tuple:
    return (name, raw_deflate(data), 8, len(data), zlib.crc32(data))


def bomb(name: str, declared: int) -> tuple:
    """A member whose data inflates to 5 GB of zeros, declaring ``declared`` bytes."""
    return (name, zeros_deflate(), 8, declared, 0)


def png_bytes(size: int = 8, channels: int = 3) -> bytes:
    buf = io.BytesIO()
    PIL.Image.fromarray(np.full((size, size, channels), 128, np.uint8)).save(buf, format="png")
    return buf.getvalue()


def giant_png_header(width: int, height: int) -> bytes:
    """A PNG that says it is ``width`` x ``height`` (8-bit RGB) and holds a few bytes of pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">L", len(body)) + kind + body + struct.pack(">L", zlib.crc32(kind + body))
    ihdr = struct.pack(">2L5B", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(1000))) + \
        chunk(b"IEND", b"")


def dataset_zip(path: Path, *, labels=None, extra: list[tuple] = (), json_text: str | None = None,
                images: int = 2) -> Path:
    """A dataset ZIP of ``images`` 8x8 PNGs (class labels ``labels``), plus ``extra`` members."""
    members = [stored(f"00000/img{i:08d}.png", png_bytes()) for i in range(images)]
    if json_text is None and labels is not None:
        json_text = json.dumps({"labels": [[f"00000/img{i:08d}.png", label] for i, label in enumerate(labels)]})
    if json_text is not None:
        members.append(stored("dataset.json", json_text.encode()))
    path.write_bytes(zip_bytes(members + list(extra)))
    return path


def deep_json(depth: int = 100_000) -> str:
    return '{"labels": ' + "[" * depth + "]" * depth + "}"


def idx_header(*dims: int) -> bytes:
    return bytes([0, 0, 0x08, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def npy_header(descr: str, shape: tuple) -> bytes:
    """The start of an .npy member (format 1.0) with any dtype string and shape."""
    text = repr({"descr": descr, "fortran_order": False, "shape": shape})
    text += " " * (63 - (10 + len(text)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def npz_file(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def leftovers(folder: Path, *names: str) -> list[str]:
    """Files a refused command left behind in ``folder``: the named outputs, and any temporary files."""
    found = [n for n in names if (folder / n).exists()]
    return found + sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".tmp")


# ------------------------------------------------------------------------------------------------- dataset tool


def refuse_dataset(tmp_path: Path, source: Path, expect: str) -> str:
    line = run_refused(["dataset", "--source", str(source), "--dest", "out.zip"], cwd=tmp_path, expect=expect)
    assert leftovers(tmp_path, "out.zip") == []
    return line


def test_dataset_source_zip_with_an_image_bomb(tmp_path):
    # honest about its size: refused from the declared size, before anything is inflated
    dataset_zip(tmp_path / "src.zip", extra=[bomb("00000/img99999999.png", 2**32 - 1)])
    refuse_dataset(tmp_path, tmp_path / "src.zip", "over the 1073741824-byte limit for one member")


def test_dataset_source_zip_with_a_lying_image_bomb(tmp_path):
    # declares 1000 bytes and inflates to 5 GB: reading stops at the declared size, and the CRC fails
    dataset_zip(tmp_path / "src.zip", extra=[bomb("00000/img99999999.png", 1000)])
    refuse_dataset(tmp_path, tmp_path / "src.zip", "img99999999.png: damaged member")


def test_dataset_source_zip_with_a_dataset_json_bomb(tmp_path):
    dataset_zip(tmp_path / "src.zip", extra=[bomb("dataset.json", 2**31)])
    refuse_dataset(tmp_path, tmp_path / "src.zip", "over the 67108864-byte limit")


def test_dataset_source_zip_with_deep_json(tmp_path):
    dataset_zip(tmp_path / "src.zip", json_text=deep_json())
    refuse_dataset(tmp_path, tmp_path / "src.zip", "nests deeper than 64 levels")


def test_dataset_source_zip_with_a_repeated_name(tmp_path):
    dataset_zip(tmp_path / "src.zip", extra=[stored("00000/img00000000.png", png_bytes(16))])
    refuse_dataset(tmp_path, tmp_path / "src.zip", "holds two members named '00000/img00000000.png'")


def test_dataset_source_image_of_a_giant_size(tmp_path):
    dataset_zip(tmp_path / "src.zip", images=0, extra=[stored("huge.png", giant_png_header(200_000, 200_000))])
    refuse_dataset(tmp_path, tmp_path / "src.zip", "-pixel limit for one image")


def test_dataset_source_with_a_huge_class(tmp_path):
    dataset_zip(tmp_path / "src.zip", labels=[0, 10**12])
    refuse_dataset(tmp_path, tmp_path / "src.zip", "is class 1000000000000, over the limit of 100000 classes")


def test_mnist_gzip_bomb(tmp_path):
    # the header asks for 10 images; the gzip inflates to 5 GB: reading stops right after the 10 images
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_header(10, 28, 28)) + gzip_of(zeros_deflate()))
    refuse_dataset(tmp_path, path, "holds more bytes of data than its header says")


def test_mnist_header_that_claims_too_much(tmp_path):
    # 2**32-1 cubed overflows int64; a tiny uncompressed file must be refused from its header alone
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_header(2**32 - 1, 2**32 - 1, 2**32 - 1) + bytes(100))
    refuse_dataset(tmp_path, path, "over the 1073741824-byte limit")
    path.write_bytes(gzip.compress(idx_header(60_000, 28, 28) + bytes(100)))
    path.rename(tmp_path / "train-images-idx3-ubyte.gz")
    refuse_dataset(tmp_path, tmp_path / "train-images-idx3-ubyte.gz", "fewer bytes of data than its header says")


def tar_header(name: str, size: int, kind: bytes = b"0") -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    return info.tobuf(format=tarfile.GNU_FORMAT)


def test_cifar_tarball_with_a_batch_bomb(tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(gzip.compress(tar_header("cifar-10-batches-py/data_batch_1", FIVE_GB)) + gzip_of(zeros_deflate()))
    refuse_dataset(tmp_path, path, "over the 67108864-byte limit for one CIFAR-10 batch")


def test_cifar_tarball_with_a_long_name_bomb(tmp_path):
    # a GNU long-name entry is read in one piece by tarfile: its declared 5 GB must never be asked for
    header = tar_header("././@LongLink", FIVE_GB, tarfile.GNUTYPE_LONGNAME)
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(gzip.compress(header) + gzip_of(zeros_deflate()))
    refuse_dataset(tmp_path, path, "over the 67108864-byte limit")


def test_fake_cifar_archive_is_called_that(tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_text("<html><body>Service unavailable</body></html>")
    line = refuse_dataset(tmp_path, path, "is named like the CIFAR-10 archive but is not a valid one")
    assert "unknown kind" not in line


# ------------------------------------------------------------------------------------------------- train --cond


@pytest.mark.parametrize("case,expect", [
    ("huge-class", "over the limit of 100000 classes"),
    ("deep-json", "nests deeper than 64 levels"),
    ("repeated-name", "holds two members named"),
    ("json-bomb", "over the 67108864-byte limit"),
    ("image-bomb", "img00000000.png (declares 4294967295 bytes, over the 1073741824-byte limit"),
])
def test_train_refuses_hostile_datasets(tmp_path, case, expect):
    data = tmp_path / "data.zip"
    if case == "huge-class":
        dataset_zip(data, labels=[0, 10**12])
    elif case == "deep-json":
        dataset_zip(data, json_text=deep_json())
    elif case == "repeated-name":
        dataset_zip(data, labels=[0, 1], extra=[stored("dataset.json", b'{"labels": null}')])
    elif case == "json-bomb":
        dataset_zip(data, extra=[bomb("dataset.json", 2**31)])
    else:
        data.write_bytes(zip_bytes([bomb("00000/img00000000.png", 2**32 - 1), stored("00000/img00000001.png",
                                                                                     png_bytes())]))
    run_refused(["train", "--outdir", "runs", "--data", str(data), "--cond", "--kimg", "1", "--device", "cpu",
                 "--workers", "0"], cwd=tmp_path, expect=expect)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# ------------------------------------------------------------------------------------------------- projected ws


def ws_bomb(path: Path, rows: int = 1_500_000, num_ws: int = 8, w_dim: int = 64) -> Path:
    """An npz whose 'w' really holds ``rows`` ws of zeros (compressed), declaring its true size."""
    header = npy_header("<f4", (rows, num_ws, w_dim))
    size = len(header) + rows * num_ws * w_dim * 4
    data = open_deflate(header) + zeros_deflate()
    path.write_bytes(zip_bytes([("w.npy", data, 8, size & 0xFFFFFFFF, 0)]))
    return path


def damaged_npz(path: Path) -> Path:
    buf = io.BytesIO()
    np.savez_compressed(buf, w=np.random.RandomState(0).randn(1, 8, 128).astype(np.float32))
    raw = bytearray(buf.getvalue())
    start = raw.index(b"w.npy") + 5
    for i in range(start + 40, start + 400):  # scramble the deflate stream of the member
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))
    return path


WS_CASES = {
    "1.5M ws": (lambda p: ws_bomb(p), "holds 1500000 ws, over the limit of 100000"),
    "strings": (lambda p: npz_file(p, w=np.array([["a", "b"], ["c", "d"]])), "has dtype '<U1', expected floats"),
    "structured": (lambda p: npz_file(p, w=np.zeros((1, 8), dtype=[("a", "<f4"), ("b", "<i4")])),
                   "has a structured dtype"),
    "datetimes": (lambda p: npz_file(p, w=np.zeros((1, 8, 128), dtype="datetime64[D]")), "has dtype"),
    "objects": (lambda p: p.write_bytes(zip_bytes([stored("w.npy", npy_header("|O", (1, 8, 128)) + bytes(8))])),
                "holds Python objects"),
    "damaged zlib": (damaged_npz, "is damaged"),
    "cut short": (lambda p: p.write_bytes(npz_file(p, w=np.zeros((1, 8, 128), np.float32)).read_bytes()[:3000]),
                  "cannot read projected W"),
    "repeated w": (lambda p: p.write_bytes(zip_bytes([stored("w.npy", b"x"), stored("w.npy", b"y")])),
                   "holds two members named 'w.npy'"),
    "header claims": (lambda p: p.write_bytes(zip_bytes([stored("w.npy", npy_header("<f4", (2, 8, 128)) + bytes(8))])),
                      "declares shape [2, 8, 128]"),
    "stored, but not there": (lambda p: p.write_bytes(zip_bytes([("w.npy", npy_header("<f4", (50_000, 8, 64)) + bytes(8),
                                                                   0, 128 + 50_000 * 8 * 64 * 4, 0,
                                                                   128 + 50_000 * 8 * 64 * 4)])),
                              "is cut short (the file ends inside it)"),
    "long doubles": (lambda p: npz_file(p, w=np.zeros((1, 8, 64), np.longdouble)), "has dtype"),
    "deep header": (lambda p: p.write_bytes(zip_bytes([stored("w.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", 9000)
                                                              + b"(" * 4500 + b")" * 4500)])),
                    "has an unreadable header"),
}


@pytest.mark.parametrize("case", list(WS_CASES))
def test_generate_refuses_hostile_projected_ws(tmp_path, case):
    make, expect = WS_CASES[case]
    make(tmp_path / "w.npz")
    run_refused(["generate", "--network", NETWORK, "--projected-w", "w.npz", "--outdir", "out"], cwd=tmp_path,
                expect=expect)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("case", ["1.5M ws", "datetimes", "damaged zlib"])
def test_style_mix_refuses_hostile_rows(tmp_path, case):
    make, expect = WS_CASES[case]
    make(tmp_path / "rows.npz")
    run_refused(["style-mix", "--network", NETWORK, "--rows", "rows.npz", "--cols", "1,2", "--outdir", "out"],
                cwd=tmp_path, expect=expect)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ------------------------------------------------------------------------------------------------- project targets


@pytest.mark.parametrize("case,expect", [
    ("zip-bomb", "declares 4294967295 bytes, over the 1073741824-byte limit"),
    ("lying-zip-bomb", "damaged member"),
    ("repeated-name", "holds two members named 'a.png'"),
    ("giant-png", "-pixel limit for one image"),
    ("giant-png-in-zip", "-pixel limit for one image"),
])
def test_project_refuses_hostile_targets(tmp_path, case, expect):
    target = tmp_path / ("target.png" if case == "giant-png" else "targets.zip")
    if case == "giant-png":
        target.write_bytes(giant_png_header(200_000, 200_000))
    elif case == "repeated-name":
        target.write_bytes(zip_bytes([stored("a.png", png_bytes()), stored("a.png", png_bytes(16))]))
    else:
        member = {"zip-bomb": bomb("a.png", 2**32 - 1), "lying-zip-bomb": bomb("a.png", 1000),
                  "giant-png-in-zip": stored("a.png", giant_png_header(200_000, 200_000))}[case]
        target.write_bytes(zip_bytes([member]))
    run_refused(["project", "--network", NETWORK, "--target", str(target), "--class", "0", "--num-steps", "2",
                 "--outdir", "out"], cwd=tmp_path, expect=expect)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.npz"))


# ------------------------------------------------------------------------------------------------- reference stats


def stats_npz(path: Path, **overrides) -> Path:
    arrays = dict(mu=np.zeros(4), sigma=np.eye(4), count=np.int64(10), meta=np.array('{"detector": "x"}'))
    arrays.update(overrides)
    return npz_file(path, **{k: v for k, v in arrays.items() if v is not None})


REF_CASES = {
    "deep meta": (lambda p: stats_npz(p, meta=np.array("[" * 100_000 + "]" * 100_000)), "nests deeper than 64"),
    "meta not an object": (lambda p: stats_npz(p, meta=np.array("[1, 2]")), "is not a JSON object"),
    "object sigma": (lambda p: p.write_bytes(zip_bytes([stored("mu.npy", npy_header("<f8", (1,)) + bytes(8)),
                                                        stored("sigma.npy", npy_header("|O", (1, 1)) + bytes(8))])),
                     "holds Python objects"),
    "structured mu": (lambda p: stats_npz(p, mu=np.zeros(4, dtype=[("a", "<f8")])), "has a structured dtype"),
    "text sigma": (lambda p: stats_npz(p, sigma=np.array([["a"] * 4] * 4)), "has dtype '<U1'"),
    "mu too wide": (lambda p: p.write_bytes(zip_bytes([
        stored("mu.npy", npy_header("<f8", (10**9,))), stored("sigma.npy", npy_header("<f8", (1, 1)))])),
        "over the limit of 16384 features"),
    "features bomb": (lambda p: p.write_bytes(zip_bytes([
        stored("mu.npy", npy_header("<f8", (4,)) + bytes(32)), stored("sigma.npy", npy_header("<f8", (4, 4)) + bytes(128)),
        ("features.npy", open_deflate(npy_header("<f4", (2**28, 4))) + zeros_deflate(), 8, 2**32 - 1, 0)])),
        "over the 1073741824-byte limit"),
    "damaged member": (lambda p: p.write_bytes(zip_bytes([deflated("mu.npy", npy_header("<f8", (4,)) + bytes(32)),
                                                          ("sigma.npy", b"\xff" * 200, 8, 138, 0)])),
                       "is damaged"),
    "huge meta": (lambda p: p.write_bytes(zip_bytes([stored("mu.npy", npy_header("<f8", (1,)) + bytes(8)),
                                                     stored("sigma.npy", npy_header("<f8", (1, 1)) + bytes(8)),
                                                     stored("meta.npy", npy_header("<U100000000", ()))])),
                  "holds 400000000 bytes, over the 268435456-byte limit"),
    "not a zip": (lambda p: p.write_bytes(b"PK\x03\x04 but nothing else"), "not an .npz archive"),
}


@pytest.mark.parametrize("case", list(REF_CASES))
def test_metrics_refuses_hostile_reference_statistics(tmp_path, case):
    make, expect = REF_CASES[case]
    make(tmp_path / "ref.npz")
    run_refused(["metrics", "--network", NETWORK, "--metrics", "fid50k_full", "--ref-stats", "ref.npz",
                 "--out", "results.jsonl", "--device", "cpu"], cwd=tmp_path, expect=expect)
    assert leftovers(tmp_path, "results.jsonl") == []


# ------------------------------------------------------------------------------------------------- real sizes


def test_real_size_projected_ws_still_load(tmp_path):
    """FFHQ-1024's ws (18 of 512) in every layout numpy writes: compressed, big-endian, Fortran order."""
    from stylegan.explore.ws_files import read_projected_w
    ws = np.random.RandomState(0).randn(3, 18, 512).astype(np.float32)
    np.savez(tmp_path / "plain.npz", w=ws)
    np.savez_compressed(tmp_path / "compressed.npz", w=ws.astype(np.float64))
    np.savez(tmp_path / "big_endian.npz", w=ws.astype(">f4"))
    np.savez(tmp_path / "fortran.npz", w=np.asfortranarray(ws[0]))
    for name in ("plain", "compressed", "big_endian"):
        np.testing.assert_array_equal(read_projected_w(tmp_path / f"{name}.npz"), ws)
    np.testing.assert_array_equal(read_projected_w(tmp_path / "fortran.npz"), ws[0])
    assert read_projected_w(tmp_path / "big_endian.npz").dtype.isnative


def test_real_size_reference_statistics_still_load(tmp_path):
    """Inception's 2048 features: mu, a 32 MB sigma and per-image features, as `--export-stats` writes them."""
    from stylegan.metrics.stats import FeatureStats
    rng = np.random.RandomState(0)
    features = rng.randn(300, 2048).astype(np.float32)
    stats = FeatureStats.from_arrays(features.mean(0), np.cov(features.T), 300, meta={"detector": "inception"})
    stats._features = __import__("torch").from_numpy(features)
    stats.save(tmp_path / "ref.npz")
    back = FeatureStats.load(tmp_path / "ref.npz")
    np.testing.assert_array_equal(back.sigma, stats.sigma)
    np.testing.assert_array_equal(back.features.numpy(), features)
    assert back.count == 300 and back.meta == {"detector": "inception"}
