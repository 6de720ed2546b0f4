"""Grid videos: frames equal direct synthesis, batching bounds memory, and files decode to what was written."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylegan.errors import StyleGANError
from stylegan.explore.images import to_uint8
from stylegan.explore.style_mix import mix_ws
from stylegan.explore.video import frame_count, lerp_animation, moving_ws, render_animation, style_mix_animation
from stylegan.explore.video_io import check_video_output, write_video
from tests.explore_nets import read_gif, read_mp4, tiny_generator

# The fix for a missing or broken ffmpeg names write_video's path argument and the commands' --output.
GIF_FIX_RE = (r"\(write a GIF instead: a path \(--output\) like NAME\.gif, or point \$IMAGEIO_FFMPEG_EXE at a "
              r"working ffmpeg\)$")


@pytest.fixture(scope="module")
def G():
    return tiny_generator()


def seed_image(G, seed, psi=1.0):
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
    with torch.no_grad():
        return to_uint8(G(z, None, truncation_psi=psi, noise_mode="const"))[0]


@pytest.mark.parametrize("space", ["z", "w"])
def test_lerp_video_starts_at_the_seed_images(G, space):
    seeds = [4, 9, 2]
    anim = lerp_animation(G, seeds, (2, 2), num_frames=6, num_keyframes=3, space=space, truncation_psi=0.8)
    frames = list(render_animation(G, anim, progress=False))
    assert len(frames) == 6 and frames[0].shape == (32, 32, 3)
    for i, s in enumerate(seeds):
        r, c = divmod(i, 2)
        cell = frames[0][r * 16:(r + 1) * 16, c * 16:(c + 1) * 16]
        assert np.abs(cell.astype(int) - seed_image(G, s, 0.8)).max() <= 1
    assert not frames[0][16:, 16:].any()  # the fourth cell has no seed
    assert not np.array_equal(frames[0], frames[3])  # it moves


def test_frames_do_not_depend_on_the_batch_size(G):
    anim = lerp_animation(G, [1, 2, 3], (3, 1), num_frames=5, num_keyframes=2, kind="slerp")
    a = np.stack(list(render_animation(G, anim, batch_size=1, progress=False)))
    b = np.stack(list(render_animation(G, anim, batch_size=64, progress=False)))
    assert np.abs(a.astype(int) - b).max() <= 1


class CountingSynthesis(torch.nn.Module):
    """Wraps G.synthesis and records the largest batch it was asked to render."""

    def __init__(self, synthesis):
        super().__init__()
        self.inner, self.largest, self.calls = synthesis, 0, 0

    def forward(self, ws, **kwargs):
        self.largest, self.calls = max(self.largest, len(ws)), self.calls + 1
        return self.inner(ws, **kwargs)


@pytest.mark.parametrize("cells, batch, largest", [(25, 4, 4), (2, 8, 8), (3, 8, 6)])
def test_rendering_is_batched(cells, batch, largest):
    G = tiny_generator()
    G.synthesis = CountingSynthesis(G.synthesis)
    anim = lerp_animation(G, list(range(cells)), (5, 5), num_frames=8, num_keyframes=2)
    frames = list(render_animation(G, anim, batch_size=batch, progress=False))
    assert len(frames) == 8 and frames[0].shape == (80, 80, 3)
    assert G.synthesis.largest == largest  # never more than --batch images (or one frame's cells) at once


def test_style_mix_video_cells(G):
    rows, cols, styles, psi = [5, 6], [1, 2, 3], [0, 1, 2], 0.7
    anim = style_mix_animation(G, rows, cols, styles, num_frames=4, num_keyframes=2, truncation_psi=psi)
    frames = list(render_animation(G, anim, batch_size=5, progress=False))
    assert len(frames) == 4 and frames[0].shape == (3 * 16, 4 * 16, 3)
    col_ws = moving_ws(G, cols, num_frames=4, num_keyframes=2, truncation_psi=psi)(np.arange(4))
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in rows])).float()
    row_ws = G.mapping(z, None, truncation_psi=psi)
    cell = lambda f, i, j: frames[f][i * 16:(i + 1) * 16, j * 16:(j + 1) * 16].astype(int)  # noqa: E731
    with torch.no_grad():
        for f in (0, 3):
            top = to_uint8(G.synthesis(col_ws[f], noise_mode="const"))
            mixed = to_uint8(G.synthesis(mix_ws(row_ws, col_ws[f], styles).flatten(0, 1), noise_mode="const"))
            for j in range(3):
                assert np.abs(cell(f, 0, j + 1) - top[j]).max() <= 1
                for i in range(2):
                    assert np.abs(cell(f, i + 1, j + 1) - mixed[i * 3 + j]).max() <= 1
            for i, s in enumerate(rows):
                assert np.abs(cell(f, i + 1, 0) - seed_image(G, s, psi)).max() <= 1  # still on the left
    assert not frames[0][:16, :16].any()


def moving_frames(n, h=16, w=24, channels=3):
    """Smooth, distinct frames: waves moving sideways, a different phase per channel."""
    y, x = np.mgrid[:h, :w].astype(float)
    return [np.stack([128 + 100 * np.sin(x / 4 + y / 6 + i / 2 + c) for c in range(channels)], axis=2).astype(np.uint8)
            for i in range(n)]


def test_mp4_decodes_to_the_frames_written(tmp_path):
    frames = moving_frames(7)
    path = tmp_path / "v.mp4"
    assert write_video(path, iter(frames), fps=12) == 7
    meta, decoded = read_mp4(path)
    assert meta["fps"] == 12 and meta["size"] == (24, 16) and decoded.shape == (7, 16, 24, 3)
    # H.264 with 4:2:0 chroma is lossy; brightness of smooth frames comes back within a few levels, and
    # each decoded frame is nearest to the frame written at its place (order kept, none dropped).
    luma_in, luma_out = np.stack(frames).mean(3), decoded.mean(3)
    assert np.abs(luma_out - luma_in).mean() < 3
    errors = np.abs(luma_out[:, None] - luma_in[None]).mean(axis=(2, 3))  # [decoded, written]
    assert list(errors.argmin(axis=1)) == list(range(7))
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


def test_odd_sizes_and_grayscale_are_padded_to_even_rgb(tmp_path):
    frames = [f[:15, :23, :1] for f in moving_frames(3)]
    write_video(tmp_path / "odd.mp4", frames, fps=5)
    meta, decoded = read_mp4(tmp_path / "odd.mp4")
    assert meta["size"] == (24, 16) and len(decoded) == 3


def test_gif_frames_and_delays(tmp_path):
    frames = moving_frames(5, channels=1)  # grayscale fits a GIF palette exactly
    assert write_video(tmp_path / "v.gif", frames, fps=25) == 5
    durations, decoded = read_gif(tmp_path / "v.gif")
    assert durations == [40] * 5 and decoded.shape == (5, 16, 24, 3)
    np.testing.assert_array_equal(decoded, np.repeat(np.stack(frames), 3, axis=3))


def test_a_failure_midway_leaves_no_file(tmp_path):
    def frames():
        yield from moving_frames(3)
        raise RuntimeError("renderer crashed")

    for name in ("v.mp4", "v.gif"):
        with pytest.raises(RuntimeError, match="crashed"):
            write_video(tmp_path / name, frames(), fps=10)
    assert list(tmp_path.iterdir()) == []


def test_unusable_ffmpeg_suggests_gif(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-ffmpeg"))
    with pytest.raises(StyleGANError, match=GIF_FIX_RE):
        check_video_output(tmp_path / "v.mp4")
    with pytest.raises(StyleGANError, match=GIF_FIX_RE):
        write_video(tmp_path / "v.mp4", moving_frames(2), fps=10)
    assert check_video_output(tmp_path / "v.gif") == "gif"  # GIF needs no ffmpeg
    assert list(tmp_path.iterdir()) == []


def test_bad_video_paths(tmp_path):
    with pytest.raises(StyleGANError, match="NAME.mp4 or NAME.gif"):
        check_video_output(tmp_path / "v.avi")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StyleGANError, match="cannot write video") as info:
        check_video_output(tmp_path / "file" / "v.mp4")
    assert info.value.fix == "choose a writable path (--output)"
    with pytest.raises(StyleGANError, match="no frames") as info:
        write_video(tmp_path / "v.gif", [], fps=10)
    assert info.value.fix == "pass at least one frame in frames"


def test_write_video_names_the_fps_argument(tmp_path):
    with pytest.raises(StyleGANError, match=r"^fps \(--fps\) is 0, but must be above 0 \(give a frame rate above 0\)$"):
        write_video(tmp_path / "v.gif", moving_frames(2), fps=0)
    assert list(tmp_path.iterdir()) == []


def test_frame_count():
    assert frame_count(30, 30) == 900 and frame_count(0.01, 10) == 1
    for duration_sec, fps in [(1, 0), (0, 30), (-1, 30)]:
        with pytest.raises(StyleGANError, match="makes no video") as info:
            frame_count(duration_sec, fps)
        assert info.value.fix == "give positive duration_sec (--duration-sec) and fps (--fps)"


def test_video_messages_name_the_python_arguments(G):
    with pytest.raises(StyleGANError, match="unknown latent space 'v'") as info:
        moving_ws(G, [1], num_frames=4, num_keyframes=2, space="v")
    assert info.value.fix == "set space (--space) to z or w"
    with pytest.raises(StyleGANError, match="needs at least one seed") as info:
        lerp_animation(G, [], (1, 1), num_frames=4, num_keyframes=2)
    assert info.value.fix == "give seeds (--seeds)"
    with pytest.raises(StyleGANError, match="a 1x2 grid has 2 cells but there are 3 seeds") as info:
        lerp_animation(G, [1, 2, 3], (1, 2), num_frames=4, num_keyframes=2)
    assert info.value.fix == "choose a larger grid (--grid-w/--grid-h) or fewer seeds"
    for rows, cols in [([], [1]), ([1], [])]:
        with pytest.raises(StyleGANError, match="at least one row seed and one column seed") as info:
            style_mix_animation(G, rows, cols, [0], num_frames=4, num_keyframes=2)
        assert info.value.fix == "give row_seeds (--row-seed) and col_seeds (--col-seeds)"


def test_frames_of_another_size_are_refused(tmp_path):
    frames = moving_frames(2) + [moving_frames(1, h=8)[0]]
    for name in ("v.mp4", "v.gif"):
        with pytest.raises(ValueError, match="video frame 2 is 24x8"):
            write_video(tmp_path / name, frames, fps=10)
    assert list(tmp_path.iterdir()) == []


def test_ffmpeg_failing_while_encoding_leaves_no_file(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nif [ "$2" = "-version" ]; then echo "ffmpeg version 0"; exit 0; fi\n'
                    'echo "Unknown encoder libx264" >&2; exit 1\n')
    fake.chmod(0o755)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(fake))
    out = tmp_path / "out"
    out.mkdir()
    assert check_video_output(out / "v.mp4") == "mp4"  # it runs, so the check passes...
    with pytest.raises(StyleGANError, match=r"ffmpeg failed to encode.*" + GIF_FIX_RE):
        write_video(out / "v.mp4", moving_frames(40, h=64, w=64), fps=10)  # ...but encoding fails
    assert list(out.iterdir()) == []


def test_a_grid_over_the_cell_limit_is_refused_before_any_walk_is_drawn(G, monkeypatch):
    drawn = []
    monkeypatch.setattr("stylegan.explore.video.keyframe_latents", lambda *a: drawn.append(a))
    with pytest.raises(StyleGANError, match=r"a 200x100 grid has 20000 cells, over the limit of 16384 "
                                            r"\(MAX_GRID_CELLS\)") as info:
        lerp_animation(G, [1], (200, 100), num_frames=4, num_keyframes=2)
    assert info.value.fix == "choose a smaller grid (--grid/--grid-w/--grid-h) or fewer images"
    with pytest.raises(StyleGANError, match="MAX_GRID_CELLS"):
        style_mix_animation(G, [1] * 99, [2] * 199, [0], num_frames=4, num_keyframes=2)
    assert drawn == []


def test_walks_over_the_latent_value_limit_are_refused_before_drawing(G, monkeypatch):
    from stylegan.limits import MAX_WALK_VALUES

    drawn = []
    monkeypatch.setattr("stylegan.explore.video.keyframe_latents", lambda *a: drawn.append(a))
    keyframes = MAX_WALK_VALUES // (4 * G.z_dim) + 1  # 4 cells of z_dim values per keyframe: one keyframe too many
    with pytest.raises(StyleGANError, match=r"4 walks of \d+ keyframes hold \d+ latent values, over the limit of "
                                            rf"{MAX_WALK_VALUES} \(MAX_WALK_VALUES\)") as info:
        moving_ws(G, [1, 2, 3, 4], num_frames=4, num_keyframes=keyframes)
    assert info.value.fix == "use fewer grid cells or fewer num_keyframes (--keyframes)"
    # In W each keyframe holds num_ws x w_dim values, so the same walks are refused with fewer keyframes.
    with pytest.raises(StyleGANError, match="MAX_WALK_VALUES"):
        moving_ws(G, [1, 2, 3, 4], num_frames=4, num_keyframes=keyframes // G.num_ws + 1, space="w")
    assert drawn == []


def test_a_frame_larger_than_a_batch_shows_its_cells_on_the_progress_bar(G, capsys):
    anim = lerp_animation(G, list(range(9)), (3, 3), num_frames=2, num_keyframes=2)
    frames = list(render_animation(G, anim, batch_size=4, progress=True, desc="walk"))
    assert len(frames) == 2
    err = capsys.readouterr().err
    assert "cell 9/9" in err and "2/2" in err
    # Frames that fit in a batch keep the plain frame counter.
    anim = lerp_animation(G, [1, 2], (2, 1), num_frames=2, num_keyframes=2)
    list(render_animation(G, anim, batch_size=4, progress=True, desc="walk"))
    assert "cell" not in capsys.readouterr().err
