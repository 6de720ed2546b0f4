"""The project request's checks: every message names the Python argument and the command's flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from stylegan.errors import StyleGANError
from stylegan.explore.project_jobs import OutputSettings, check_request

NO_VIDEO = OutputSettings(save_video=False)


@pytest.mark.parametrize("kwargs, what, fix", [
    ({"target": None, "seeds": None}, "give exactly one of target (--target) and seeds (--seeds)",
     "a target image, folder or ZIP to project, or seeds whose images to project"),
    ({"target": Path("a.png"), "seeds": [1]}, "give exactly one of target (--target) and seeds (--seeds)",
     "a target image, folder or ZIP to project, or seeds whose images to project"),
    ({"seeds": [1], "max_images": 2}, "max_images (--max-images) applies to a target (--target) folder or ZIP",
     "leave it out with seeds (--seeds)"),
    ({"target": Path("a.png"), "truncation_psi": 0.7},
     "truncation_psi (--trunc) applies to seeds (--seeds) targets only",
     "leave truncation_psi (--trunc) at 1 with target (--target)"),
    ({"seeds": [1], "output": OutputSettings(fps=0)}, "fps (--fps) is 0, but must be above 0",
     "give a frame rate above 0"),
])
def test_check_request_names_the_arguments(kwargs, what, fix):
    request = {"target": None, "seeds": None, "max_images": None, "truncation_psi": 1, "output": NO_VIDEO, **kwargs}
    with pytest.raises(StyleGANError) as info:
        check_request(**request)
    assert (info.value.what, info.value.fix) == (what, fix)


def test_check_request_accepts_good_requests():
    check_request(Path("a.png"), None, 3, 1, NO_VIDEO)
    check_request(None, [1, 2], None, 0.7, NO_VIDEO)
    check_request(None, [1], None, 1, OutputSettings(save_video=False, fps=0))  # fps matters only for the video


def test_unusable_ffmpeg_points_to_save_video(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-ffmpeg"))
    with pytest.raises(StyleGANError, match="ffmpeg") as info:
        check_request(None, [1], None, 1, OutputSettings())
    assert info.value.fix == "turn off save_video (--no-save-video), or point $IMAGEIO_FFMPEG_EXE at a working ffmpeg"
