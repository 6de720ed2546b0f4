"""``--precision fp32|bf16`` on the commands that run the generator: generate, style-mix, lerp-video,
style-mix-video and project. fp32 stays the default (the same pixels as without the flag); bf16 images stay
within the accuracy bound of tests/ops/test_bf16.py; a bad value is one clean error line."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from stylegan import precision
from tests.detector_standins import write_detectors
from tests.hostile.harness import run_refused

needs_native_bf16 = pytest.mark.skipif(not precision.cpu_has_native_bf16(),
                                       reason="this CPU has no native bf16 (AVX512-BF16 or AMX)")
COMMON = ["--network", "default", "--class", "3", "--device", "cpu", "--quiet"]


def generated(run, outdir, *extra: str) -> np.ndarray:
    r = run("generate", "--seeds", "0-3", "--grid", "2x2", "--outdir", outdir, *COMMON, *extra)
    assert r.code == 0, r.err
    return np.asarray(Image.open(outdir / "grid.png"), dtype=np.float64)


def test_fp32_is_the_default(run, tmp_path):
    assert np.array_equal(generated(run, tmp_path / "a"), generated(run, tmp_path / "b", "--precision", "fp32"))


@needs_native_bf16
def test_generate_in_bf16_stays_within_the_bound(run, tmp_path):
    reference, fast = generated(run, tmp_path / "a"), generated(run, tmp_path / "b", "--precision", "bf16")
    mse = float(np.mean((reference - fast) ** 2))
    assert 0 < mse and 10 * math.log10(255**2 / mse) >= 40
    assert np.abs(reference - fast).max() <= 16


@pytest.mark.parametrize("command", [
    ["style-mix", "--rows", "1", "--cols", "2", "--styles", "0-1"],
    ["lerp-video", "--seeds", "0-1", "--grid", "2x1", "--keyframes", "2", "--duration-sec", "0.5", "--fps", "4"],
    ["style-mix-video", "--row-seed", "0", "--col-seeds", "1", "--duration-sec", "0.5", "--fps", "4"],
])
def test_explore_commands_take_the_flag(run, tmp_path, command):
    out = ["--outdir", tmp_path / "out"] if command[0] == "style-mix" else ["--output", tmp_path / "v.mp4"]
    r = run(*command, *out, *COMMON, "--precision", "bf16")
    assert r.code == 0, r.err
    assert any(tmp_path.rglob("*.png")) or (tmp_path / "v.mp4").stat().st_size > 0


@needs_native_bf16
def test_project_runs_its_generator_in_bf16(run, uncond_network, tmp_path):
    ws = {}
    for name in ("fp32", "bf16"):
        out = tmp_path / name
        r = run("project", "--network", uncond_network, "--seeds", "3", "--num-steps", "3", "--no-save-video",
                "--detector-dir", write_detectors(tmp_path / "det"), "--outdir", out, "--quiet",
                "--precision", name)
        assert r.code == 0, r.err
        ws[name] = np.load(out / "seed0003" / "projected_w.npz")["w"]
    # Same start, same steps: only the generator's arithmetic differs, a little.
    assert not np.array_equal(ws["fp32"], ws["bf16"])
    assert np.abs(ws["fp32"] - ws["bf16"]).max() < 0.1 * np.abs(ws["fp32"]).max()


def test_without_native_bf16_generate_says_so_and_runs_fp32(run, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: set())
    monkeypatch.setattr(precision, "_fallback_said", False)
    reference = generated(run, tmp_path / "a")
    r = run("generate", "--seeds", "0-3", "--grid", "2x2", "--outdir", tmp_path / "b", *COMMON, "--precision", "bf16")
    assert r.code == 0 and "no native bf16" in r.err and "running fp32" in r.err
    assert np.array_equal(reference, np.asarray(Image.open(tmp_path / "b" / "grid.png"), dtype=np.float64))


def test_a_bad_precision_is_refused(tmp_path):
    run_refused(["generate", "--seeds", "1", "--precision", "fp8", "--outdir", str(tmp_path / "o")],
                cwd=tmp_path, expect="--precision")
    assert not (tmp_path / "o").exists()
