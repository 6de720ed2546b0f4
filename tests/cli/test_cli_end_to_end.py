"""True end-to-end runs in a fresh process: `python -m stylegan` and the `stylegan` console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def stylegan_process(*args, console_script: bool = False, cwd=None) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("stylegan")
    if console_script and not script.exists():
        pytest.skip("the stylegan console script is not installed in this environment")
    cmd = [str(script)] if console_script else [sys.executable, "-m", "stylegan"]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_python_dash_m_generates(tmp_path):
    p = stylegan_process("generate", "--seeds", "3-4", "--class", "2", "--outdir", tmp_path / "o", "--quiet")
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(tmp_path / "o")) == ["seed0003.png", "seed0004.png"]
    assert p.stderr == ""


def test_console_script_style_mix(tmp_path):
    p = stylegan_process("style-mix", "--rows", "1,2", "--cols", "3", "--class", "0", "--outdir", tmp_path,
                         "--quiet", console_script=True)
    assert p.returncode == 0, p.stderr
    assert {"grid.png", "1-3.png", "2-3.png"} <= set(os.listdir(tmp_path))


def test_errors_in_a_real_process(tmp_path):
    p = stylegan_process("generate", "--seeds", "9-1", "--outdir", tmp_path / "o")
    assert p.returncode == 2
    assert p.stderr.startswith("error: --seeds: descending range '9-1' (write it as 1-9)")
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert not (tmp_path / "o").exists()
