"""`stylegan lerp-video` and `stylegan style-mix-video`: files that decode right, and clean failures."""

from __future__ import annotations

import pytest

from tests.explore_nets import read_gif, read_mp4


def test_lerp_video_mp4(run, tmp_path):
    out = tmp_path / "videos" / "walk.mp4"  # the folder is created
    r = run("lerp-video", "--seeds", "1-5", "--class", "3", "--duration-sec", "1.5", "--fps", "8", "--keyframes", "3",
            "--output", out, "--quiet")
    assert r.code == 0, r.err
    assert "12 frames" in r.out
    meta, frames = read_mp4(out)
    assert meta["fps"] == 8 and meta["size"] == (3 * 32, 2 * 32) and len(frames) == 12  # 5 seeds → 3×2 grid
    assert [p.name for p in out.parent.iterdir()] == ["walk.mp4"]


def test_lerp_video_gif_from_one_seed_and_a_grid(run, uncond_network, tmp_path):
    out = tmp_path / "walk.gif"
    r = run("lerp-video", "--network", uncond_network, "--seeds", "7", "--grid-w", "3", "--grid-h", "2",
            "--space", "w", "--interp", "slerp", "--duration-sec", "0.5", "--fps", "10", "--batch", "4",
            "--output", out, "--quiet")
    assert r.code == 0, r.err
    assert "5 frames at 10 fps" in r.out
    durations, frames = read_gif(out)
    # Pillow stores a frame identical to the previous one as a longer delay, so count time, not frames.
    assert sum(durations) == 500 and set(durations) <= {100, 200, 300, 400, 500}
    assert frames.shape[1:] == (2 * 16, 3 * 16, 3)


def test_style_mix_video(run, uncond_network, tmp_path):
    out = tmp_path / "mix.mp4"
    r = run("style-mix-video", "--network", uncond_network, "--row-seed", "1", "--col-seeds", "2,3,4",
            "--col-styles", "coarse", "--duration-sec", "1", "--fps", "6", "--batch", "2", "--output", out, "--quiet")
    assert r.code == 0, r.err
    meta, frames = read_mp4(out)
    assert meta["size"] == (4 * 16, 2 * 16) and len(frames) == 6 and meta["fps"] == 6


@pytest.mark.parametrize("args, message", [
    (["--output", "{tmp}/v.avi"], "NAME.mp4 or NAME.gif"),
    (["--output", "{tmp}/file/v.mp4"], "cannot write video"),
    (["--output", "{tmp}/v.mp4", "--grid-w", "1100"], "too large to encode"),
    (["--output", "{tmp}/v.mp4", "--duration-sec", "0"], "give positive duration_sec (--duration-sec) and fps (--fps)"),
    (["--output", "{tmp}/v.mp4", "--seeds", "x"], "--seeds: bad list entry"),
])
def test_lerp_video_errors(run, uncond_network, tmp_path, args, message):
    (tmp_path / "file").write_text("x")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    seeds = [] if "--seeds" in args else ["--seeds", "1"]
    r = run("lerp-video", "--network", uncond_network, *seeds, *args, "--quiet")
    assert r.code == 2 and message in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_unusable_ffmpeg_suggests_gif(run, uncond_network, tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "nothing-here"))
    r = run("style-mix-video", "--network", uncond_network, "--row-seed", "1", "--col-seeds", "2",
            "--output", tmp_path / "out" / "v.mp4", "--quiet")
    assert r.code == 2 and "ffmpeg" in r.err and "(write a GIF instead: a path (--output) like NAME.gif, or" in r.err
    assert list(tmp_path.iterdir()) == []


def test_bad_col_styles(run, uncond_network, tmp_path):
    r = run("style-mix-video", "--network", uncond_network, "--row-seed", "1", "--col-seeds", "2",
            "--col-styles", "0-40", "--output", tmp_path / "v.gif", "--quiet")
    assert r.code == 2 and "beyond this network's 6 ws" in r.err and not (tmp_path / "v.gif").exists()
