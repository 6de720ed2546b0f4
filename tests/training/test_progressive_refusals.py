"""Bad input for `stylegan train --cfg stylegan1`: one `error:` line, exit 2, nothing written."""

import io
import json
import zipfile

import numpy as np
import PIL.Image
import pytest

from stylegan.errors import StyleGANError
from stylegan.snapshot_names import latest_snapshot
from stylegan.training.run import train
from tests.hostile.harness import run_refused
from tests.training.conftest import tiny_options
from tests.training.test_progressive import v1_options

TINY = ["--cbase", "256", "--cmax", "16", "--map", "2", "--zdim", "16", "--wdim", "16", "--mbstd-group", "2",
        "--workers", "0", "--batch", "4", "--kimg", "0.016", "--quiet"]


def image_zip(path, width: int, height: int, count: int = 4):
    """A dataset ZIP in the official layout with ``count`` grayscale ``width``×``height`` images."""
    rng = np.random.RandomState(0)
    with zipfile.ZipFile(path, "w") as z:
        for i in range(count):
            buf = io.BytesIO()
            PIL.Image.fromarray(rng.randint(0, 256, [height, width], dtype=np.uint8), "L").save(buf, format="PNG")
            z.writestr(f"00000/img{i:08d}.png", buf.getvalue())
        z.writestr("dataset.json", json.dumps({"labels": None}))
    return path


def test_a_dataset_whose_side_is_not_a_power_of_two(tmp_path):
    data = image_zip(tmp_path / "d24.zip", 24, 24)
    line = run_refused(["train", "--cfg", "stylegan1", "--data", str(data), "--outdir", "runs", *TINY], cwd=tmp_path,
                       expect="cfg (--cfg) stylegan1 grows the networks by doubling, but the dataset's images are "
                              "24x24, not a power of two")
    assert "--resolution 16x16" in line
    assert not (tmp_path / "runs").exists()


def test_a_dataset_that_is_not_square(tmp_path):
    data = image_zip(tmp_path / "d16x8.zip", 16, 8)
    run_refused(["train", "--cfg", "stylegan1", "--data", str(data), "--outdir", "runs", *TINY], cwd=tmp_path,
                expect="training needs square ones")
    assert not (tmp_path / "runs").exists()


def test_a_start_above_the_dataset_resolution(digits16, tmp_path):
    run_refused(["train", "--cfg", "stylegan1", "--start-res", "32", "--data", str(digits16), "--outdir", "runs",
                 *TINY], cwd=tmp_path, expect="start_res (--start-res) is 32, above the dataset's 16x16")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, expect", [
    (["--lod-kimg", "600"], "--lod-kimg '600' is not two kimg counts"),
    (["--lod-kimg", "1,-2"], "--lod-kimg '1,-2' is not two kimg counts"),
    (["--batch-per-res", "4:64,12:8"], "--batch-per-res has a bad entry '12:8'"),
    (["--glr-per-res", "8:fast"], "--glr-per-res has a bad entry '8:fast'"),
    (["--start-res", "12"], "start_res (--start-res) is 12, not a power of two"),
])
def test_bad_growth_options(digits16, tmp_path, args, expect):
    run_refused(["train", "--cfg", "stylegan1", "--data", str(digits16), "--outdir", "runs", *TINY, *args],
                cwd=tmp_path, expect=expect)
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def runs_of_both_families(digits16, tmp_path_factory):
    """A finished tiny v1 run and a finished tiny StyleGAN2 run (their folders)."""
    root = tmp_path_factory.mktemp("families")
    train(v1_options(digits16, root / "v1", kimg=0.016, cond=False))
    train(tiny_options(digits16, root / "v2", kimg=0.004))
    return root / "v1", root / "v2"


def _listing(folder):
    return sorted((p.relative_to(folder), p.stat().st_size) for p in folder.rglob("*"))


def test_continuing_a_run_with_a_cfg_of_the_other_family(runs_of_both_families):
    v1, v2 = runs_of_both_families
    for outdir, cfg, expect in [(v1, "auto", "'auto' trains stylegan2 networks, but the run to continue trains "
                                             "stylegan1 networks"),
                                (v1, "paper256", "'paper256' trains stylegan2 networks"),
                                (v2, "stylegan1", "'stylegan1' trains stylegan1 networks, but the run to continue "
                                                  "trains stylegan2 networks")]:
        before = _listing(outdir)
        run_refused(["train", "--outdir", str(outdir), "--resume", "latest", "--cfg", cfg, "--kimg", "1"],
                    cwd=outdir, expect=expect)
        assert _listing(outdir) == before


def test_starting_from_a_network_of_the_other_family(runs_of_both_families, digits16, tmp_path):
    v1, v2 = runs_of_both_families
    for source, cfg, expect in [(v1, "auto", "holds stylegan1 networks, but cfg (--cfg) auto trains stylegan2"),
                                (v2, "stylegan1", "holds stylegan2 networks, but cfg (--cfg) stylegan1 trains "
                                                  "stylegan1")]:
        run_refused(["train", "--cfg", cfg, "--data", str(digits16), "--outdir", "runs", "--resume",
                     str(latest_snapshot(source)), *TINY], cwd=tmp_path, expect=expect)
        assert not (tmp_path / "runs").exists()


def test_the_library_refuses_the_other_family_too(runs_of_both_families, digits16, tmp_path):
    v1, _ = runs_of_both_families
    with pytest.raises(StyleGANError, match="holds stylegan1 networks"):
        train(tiny_options(digits16, tmp_path / "runs", resume=str(latest_snapshot(v1))))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
