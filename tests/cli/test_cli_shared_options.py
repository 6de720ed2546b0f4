"""Options every computing command shares: --threads, --grid WxH, --version, empty paths, the error line's length."""

from __future__ import annotations

import pytest
import torch

import stylegan
from stylegan.errors import StyleGANError
from stylegan.limits import MAX_ERROR_LINE

# command line (after `stylegan`) → the function it reaches first that does real work
THREADED = {
    "generate": (["generate", "--seeds", "0"], "stylegan.load_network"),
    "style-mix": (["style-mix", "--rows", "1", "--cols", "2"], "stylegan.load_network"),
    "lerp-video": (["lerp-video", "--seeds", "0"], "stylegan.load_network"),
    "style-mix-video": (["style-mix-video", "--row-seed", "1", "--col-seeds", "2"], "stylegan.load_network"),
    "project": (["project", "--seeds", "1"], "stylegan.load_network"),
    "mass-project": (["mass-project", "--networks", "{tmp}", "--data", "{tmp}"], "stylegan.cli.mass_project.load_vgg16"),
    "metrics": (["metrics", "--metrics", "fid50k_full"], "stylegan.formats.load_network_file"),
}


@pytest.mark.parametrize("command", list(THREADED))
def test_threads_hold_while_the_command_works_and_are_restored_after(run, tmp_path, monkeypatch, command):
    args, target = THREADED[command]
    seen = []

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        raise StyleGANError("stopped by the test", "nothing to fix")

    monkeypatch.setattr(target, spy)
    before = torch.get_num_threads()
    wanted = before + 2
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    outdir = ["--outdir", tmp_path / "out"] if command in ("generate", "style-mix", "project", "mass-project") else []
    r = run(*args, *outdir, "--threads", wanted, "--quiet")
    assert r.err.startswith("error: stopped by the test"), r.err
    assert seen == [wanted] and torch.get_num_threads() == before
    r = run(*args, *outdir, "--threads", "0")
    assert r.code == 2 and "--threads" in r.err and r.err.count("\n") == 1


@pytest.mark.parametrize("command", list(THREADED))
def test_every_computing_command_keeps_freed_memory_before_it_works(run, tmp_path, monkeypatch, command):
    """glibc is told to keep freed blocks (stylegan.ops.allocator) before the command's first real work."""
    args, target = THREADED[command]
    events = []
    monkeypatch.setattr("stylegan.cli.options.tune_cpu_allocator", lambda: events.append("tuned"))

    def spy(*args, **kwargs):
        events.append("work")
        raise StyleGANError("stopped by the test", "nothing to fix")

    monkeypatch.setattr(target, spy)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    outdir = ["--outdir", tmp_path / "out"] if command in ("generate", "style-mix", "project", "mass-project") else []
    r = run(*args, *outdir, "--quiet")
    assert r.err.startswith("error: stopped by the test"), r.err
    assert events == ["tuned", "work"]


def test_every_computing_command_takes_threads(run):
    for command in [*THREADED, "train"]:
        r = run(command, "--help")
        assert r.code == 0 and "--threads" in r.out, command


def test_generate_takes_a_grid_as_wxh_and_alone(run, tmp_path):
    import PIL.Image

    r = run("generate", "--seeds", "0-5", "--class", "1", "--grid", "3x2", "--outdir", tmp_path / "a", "--quiet")
    assert r.code == 0, r.err
    assert PIL.Image.open(tmp_path / "a" / "grid.png").size == (3 * 32, 2 * 32)
    r = run("generate", "--seeds", "0-4", "--class", "1", "--grid", "--quiet", "--outdir", tmp_path / "b")
    assert r.code == 0, r.err  # --grid alone, followed by another option: near-square
    assert PIL.Image.open(tmp_path / "b" / "grid.png").size == (3 * 32, 2 * 32)
    r = run("generate", "--seeds", "0-4", "--class", "1", "--outdir", tmp_path / "c", "--quiet", "--grid")
    assert r.code == 0, r.err  # --grid alone at the end
    assert PIL.Image.open(tmp_path / "c" / "grid.png").size == (3 * 32, 2 * 32)
    r = run("generate", "--seeds", "0-4", "--class", "1", "--grid", "5", "--outdir", tmp_path / "d", "--quiet")
    assert r.code == 0, r.err  # one number: NxN
    assert PIL.Image.open(tmp_path / "d" / "grid.png").size == (5 * 32, 5 * 32)


@pytest.mark.parametrize("args, expected", [
    (["--grid", "4y4"], "error: --grid: grid '4y4' is not WIDTHxHEIGHT (write it like 8x4)"),
    (["--grid", "2x2"], "error: a 2x2 grid has 4 cells but there are 6 images"),
    (["--grid", "3x2", "--grid-w", "3"], "error: --grid WxH and --grid-w/--grid-h both give the grid's size"),
    (["--grid", "200x100"], "error: --grid: a 200x100 grid has 20000 cells, over the limit of 16384"),
])
def test_bad_grids_are_one_line_and_write_nothing(run, tmp_path, args, expected):
    r = run("generate", "--seeds", "0-5", "--class", "1", *args, "--outdir", tmp_path / "out", "--quiet")
    assert r.code == 2 and r.err.startswith(expected) and r.err.count("\n") == 1, r.err
    assert not (tmp_path / "out").exists()


def test_lerp_video_takes_a_grid_as_wxh(run, uncond_network, tmp_path):
    from tests.explore_nets import read_gif

    out = tmp_path / "walk.gif"
    r = run("lerp-video", "--network", uncond_network, "--seeds", "7", "--grid", "3x2", "--duration-sec", "0.2",
            "--fps", "10", "--output", out, "--quiet")
    assert r.code == 0, r.err
    assert read_gif(out)[1].shape[1:] == (2 * 16, 3 * 16, 3)
    r = run("lerp-video", "--network", uncond_network, "--seeds", "7", "--grid", "3x2", "--grid-h", "2",
            "--output", out, "--quiet")
    assert r.code == 2 and "both give the grid's size" in r.err


def test_train_takes_the_same_grid_option(run, tmp_path):
    r = run("train", "--outdir", tmp_path, "--data", tmp_path, "--grid", "4y4", "--dry-run")
    assert r.code == 2 and r.err.startswith("error: --grid: grid '4y4' is not WIDTHxHEIGHT"), r.err


def test_version(run):
    r = run("--version")
    assert r.code == 0 and r.out.strip() == f"stylegan {stylegan.__version__}"


@pytest.mark.parametrize("args, flag", [
    (["generate", "--seeds", "0", "--outdir", ""], "--outdir"),
    (["style-mix", "--rows", "1", "--cols", "2", "--outdir", " "], "--outdir"),
    (["lerp-video", "--seeds", "0", "--output", ""], "--output"),
    (["generate", "--seeds", "0", "--network", ""], "--network"),
    (["dataset", "--source", "", "--dest", "x.zip"], "--source"),
    (["train", "--outdir", "", "--data", "x.zip"], "--outdir"),
    (["metrics", "--out", ""], "--out"),
])
def test_empty_paths_are_refused(run, tmp_path, monkeypatch, args, flag):
    monkeypatch.chdir(tmp_path)
    r = run(*args)
    assert r.code == 2 and r.err.startswith(f"error: {flag} is empty (") and r.err.count("\n") == 1, r.err
    assert list(tmp_path.iterdir()) == []  # nothing written into the working directory


def test_a_huge_error_line_is_cut_and_keeps_its_fix(run, monkeypatch):
    def huge(*args, **kwargs):
        raise StyleGANError("bad value " + "x" * 5_000_000, "use a better file")

    monkeypatch.setattr("stylegan.load_network", huge)
    r = run("generate", "--seeds", "0", "--quiet")
    assert r.code == 2 and r.err.count("\n") == 1
    line = r.err.rstrip("\n")
    assert len(line) <= MAX_ERROR_LINE and line.startswith("error: bad value xxx")
    assert line.endswith("… (use a better file)")


def test_a_huge_usage_error_is_cut_too(run):
    r = run("generate", "--seeds", "0", "--class", "y" * 100_000)
    assert r.code == 2 and r.err.count("\n") == 1
    line = r.err.rstrip("\n")
    assert len(line) <= MAX_ERROR_LINE and line.endswith("… (see 'stylegan generate --help')")
