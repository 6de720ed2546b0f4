"""The bounded readers in stylegan/limits.py, and the hostile-input harness on a known refusal."""

import io
import os
import signal
import subprocess

import pytest

from stylegan.errors import StyleGANError
from stylegan.limits import MAX_JSON_DEPTH, load_json, quote, read_capped
from tests.hostile.harness import run_refused


def test_quote_cuts_long_content_and_keeps_short():
    assert quote("abc") == "'abc'"
    cut = quote("x" * 10_000, limit=50)
    assert len(cut) == 50 and cut.endswith("…")


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"a":' * 70 + "1" + "}" * 70])
def test_load_json_refuses_deep_nesting_in_one_line(text):
    with pytest.raises(StyleGANError, match=f"deeper than {MAX_JSON_DEPTH}"):
        load_json(text, "metadata", "rebuild the file")


def test_load_json_reads_brackets_inside_strings_as_text():
    assert load_json(b'{"name": "[[[{{{", "n": [1, 2]}', "metadata", "fix") == {"name": "[[[{{{", "n": [1, 2]}


@pytest.mark.parametrize("raw, message", [(b"\xff\xfe", "not UTF-8"), (b"{'a': 1}", "not valid JSON")])
def test_load_json_refuses_junk_in_one_line(raw, message):
    with pytest.raises(StyleGANError, match=message):
        load_json(raw, "metadata", "fix")


def test_read_capped_stops_at_the_limit():
    def overflow():
        return StyleGANError("member inflates to more than 10 bytes", "fix")

    assert read_capped(io.BytesIO(b"a" * 10), 10, overflow) == b"a" * 10
    with pytest.raises(StyleGANError, match="more than 10 bytes"):
        read_capped(io.BytesIO(b"a" * 11), 10, overflow)


def test_the_harness_sees_a_one_line_refusal(tmp_path):
    line = run_refused(["generate", "--seeds", "5-1", "--outdir", str(tmp_path / "out")], cwd=tmp_path,
                       expect="descending range")
    assert line.startswith("error: --seeds")
    assert not (tmp_path / "out").exists()


def test_the_harness_runs_a_good_command_to_its_end(tmp_path):
    from tests.hostile.harness import run_stylegan

    result = run_stylegan(["generate", "--seeds", "1", "--class", "2", "--outdir", "out", "--quiet"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "seed0001.png").is_file()
    with pytest.raises(AssertionError, match="exit 0"):  # run_refused must fail for a command that succeeds
        run_refused(["generate", "--seeds", "1", "--class", "2", "--outdir", "out2", "--quiet"], cwd=tmp_path)


def test_the_warm_and_the_fresh_harness_agree(tmp_path, monkeypatch):
    args = ["generate", "--seeds", "1", "--class", "99", "--outdir", "out"]
    warm = run_refused(args, cwd=tmp_path)
    monkeypatch.setenv("STYLEGAN_HOSTILE_FRESH", "1")
    assert run_refused(args, cwd=tmp_path) == warm


@pytest.mark.parametrize("entry, expected", [
    ("tests.hostile.misbehaving:killed_by_a_signal", -signal.SIGSEGV),
    ("tests.hostile.misbehaving:allocate_past_the_cap", 1),  # MemoryError: a traceback, exit 1
    ("tests.hostile.misbehaving:uncaught_error", 1),
])
def test_the_warm_harness_reports_what_a_fresh_process_would(tmp_path, entry, expected):
    from tests.hostile.harness import _Zygote

    result = _Zygote.shared().run([], tmp_path, dict(os.environ), entry=entry)
    assert result.returncode == expected, result.stderr
    if expected == 1:
        assert "Traceback" in result.stderr


def test_the_warm_harness_stops_a_command_at_the_time_limit(tmp_path):
    from tests.hostile.harness import _Zygote

    with pytest.raises(subprocess.TimeoutExpired):
        _Zygote.shared().run([], tmp_path, dict(os.environ), entry="tests.hostile.misbehaving:hang", time_limit=1)
