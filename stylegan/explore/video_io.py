"""Writing videos: MP4 (H.264 through the ffmpeg that imageio-ffmpeg ships) or animated GIF (Pillow).

Frames are uint8 ``[H, W, 3]`` (``[H, W, 1]`` is repeated to RGB). They are streamed to the encoder one at
a time (MP4), into a hidden temporary file beside the target that is renamed over it only when the whole
video is written: a failed or interrupted run leaves no partial video.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import PIL.Image

from stylegan.atomic import atomic_output, probe_writable_folder
from stylegan.errors import StyleGANError, setting

VIDEO_SUFFIXES = (".mp4", ".gif")
GIF_FIX = (f"write a GIF instead: a {setting('path', '--output')} like NAME.gif, or point $IMAGEIO_FFMPEG_EXE "
           "at a working ffmpeg")
MAX_SIDE = 16384  # H.264 (and most players) cannot go beyond this


def video_kind(path: str | os.PathLike) -> str:
    """'mp4' or 'gif' from the file name; anything else raises StyleGANError."""
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise StyleGANError(f"cannot tell the video format of {path}", "name the output NAME.mp4 or NAME.gif")
    return suffix[1:]


def ffmpeg_exe() -> str:
    """The ffmpeg that imageio-ffmpeg uses, checked to run; StyleGANError (suggesting GIF) when it cannot."""
    try:
        import imageio_ffmpeg
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as e:
        raise StyleGANError(f"ffmpeg is not available for MP4 output ({' '.join(str(e).split())[:100]})",
                            GIF_FIX) from None
    try:
        done = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else e.__class__.__name__
        raise StyleGANError(f"ffmpeg at {exe} does not run ({reason})", GIF_FIX) from None
    if done.returncode != 0:
        raise StyleGANError(f"ffmpeg at {exe} does not run (exit code {done.returncode})", GIF_FIX)
    return exe


def check_video_output(path: str | os.PathLike) -> str:
    """Check a video path before any rendering: known suffix, writable folder, and ffmpeg for MP4.

    Returns the kind ('mp4' or 'gif'). The folder must exist (the CLI creates it).
    """
    path = Path(path)
    kind = video_kind(path)
    if path.is_dir():
        raise StyleGANError(f"video path {path} is a folder", "give a file name such as out/video.mp4")
    try:
        probe_writable_folder(path.parent)
    except OSError as e:
        raise StyleGANError(f"cannot write video {path}: {e.strerror or e}",
                            f"choose a writable {setting('path', '--output')}") from None
    if kind == "mp4":
        ffmpeg_exe()
    return kind


def check_frame_size(width: int, height: int) -> None:
    """Raise StyleGANError for frames larger than video encoders take (checked before any rendering)."""
    if max(width, height) > MAX_SIDE:
        raise StyleGANError(f"video frames of {width}x{height} are too large to encode",
                            f"keep both sides at most {MAX_SIDE} pixels: fewer grid cells")


def _rgb_even(frame: np.ndarray) -> np.ndarray:
    """uint8 ``[H, W, C]`` → contiguous RGB with even sides (yuv420p needs them), padding with black."""
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4) or frame.dtype != np.uint8:
        raise ValueError(f"video frames must be uint8 [H, W, 1|3|4], got {list(frame.shape)} {frame.dtype}")
    if frame.shape[2] == 1:
        frame = np.repeat(frame, 3, axis=2)
    elif frame.shape[2] == 4:
        frame = frame[:, :, :3]
    h, w = frame.shape[:2]
    if h % 2 or w % 2:
        frame = np.pad(frame, [(0, h % 2), (0, w % 2), (0, 0)])
    return np.ascontiguousarray(frame)


def _write_mp4(tmp: Path, frames: Iterator[np.ndarray], first: np.ndarray, fps: float, quality: float) -> int:
    import imageio_ffmpeg

    ffmpeg_exe()  # a clear error now rather than a broken pipe later
    h, w = first.shape[:2]
    writer = imageio_ffmpeg.write_frames(
        str(tmp), (w, h), fps=fps, codec="libx264", quality=quality, macro_block_size=1, pix_fmt_out="yuv420p",
        output_params=["-f", "mp4"],  # the temporary name has no .mp4 suffix to guess the format from
        ffmpeg_log_level="error")

    def encoder_error(e: BaseException) -> StyleGANError:
        return StyleGANError(f"ffmpeg failed to encode the MP4 ({' '.join(str(e).split())[:160]})", GIF_FIX)

    count = 0
    try:
        for frame in itertools.chain([first], (_rgb_even(f) for f in frames)):
            _check_same_size(frame, first, count)
            try:
                if count == 0:
                    writer.send(None)  # starts ffmpeg
                writer.send(frame)
            except (OSError, RuntimeError) as e:  # a broken pipe, or ffmpeg's own error
                raise encoder_error(e) from None
            count += 1
    except BaseException:
        with contextlib.suppress(Exception):
            writer.close()  # stop ffmpeg; the error that got us here is the one to report
        raise
    try:
        writer.close()  # waits for ffmpeg to finish the file
    except (OSError, RuntimeError) as e:
        raise encoder_error(e) from None
    return count


def _check_same_size(frame: np.ndarray, first: np.ndarray, index: int) -> None:
    if frame.shape != first.shape:
        raise ValueError(f"video frame {index} is {frame.shape[1]}x{frame.shape[0]}, "
                         f"but the first is {first.shape[1]}x{first.shape[0]}")


def _write_gif(tmp: Path, frames: Iterator[np.ndarray], first: np.ndarray, fps: float) -> int:
    count = 1

    def rest() -> Iterator[PIL.Image.Image]:
        nonlocal count
        for frame in frames:
            frame = _rgb_even(frame)
            _check_same_size(frame, first, count)
            count += 1
            yield PIL.Image.fromarray(frame)

    # GIF delays are whole centiseconds; Pillow keeps them in milliseconds and rounds on writing.
    PIL.Image.fromarray(first).save(tmp, format="GIF", save_all=True, append_images=rest(), loop=0,
                                    duration=1000 / fps, optimize=False)
    return count


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float, *, quality: float = 8) -> int:
    """Encode ``frames`` (uint8 ``[H, W, C]``, all one size) to ``path`` (.mp4 or .gif); returns the frame count.

    ``quality`` (1–10, MP4 only) maps to x264's CRF as imageio-ffmpeg does it (8 → CRF 10, visually lossless).
    GIF keeps frames in memory (Pillow needs them all) and stores delays in whole centiseconds, so its
    fps is exact only when 100 / fps is an integer; identical consecutive frames are merged by Pillow
    into one longer frame.
    """
    path = Path(path)
    kind = video_kind(path)
    if not fps > 0:
        raise StyleGANError(f"{setting('fps')} is {fps}, but must be above 0", "give a frame rate above 0")
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise StyleGANError("the video has no frames", "pass at least one frame in frames")
    first = _rgb_even(first)
    check_frame_size(first.shape[1], first.shape[0])
    with atomic_output(path, "video", "check free space and permissions") as tmp:
        if kind == "mp4":
            return _write_mp4(tmp, frames, first, fps, quality)
        return _write_gif(tmp, frames, first, fps)
