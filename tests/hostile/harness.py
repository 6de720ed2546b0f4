"""Running one hostile input through the real command line, under the limits a user's machine has.

:func:`run_refused` starts ``stylegan ARGS`` in a fresh process with its address space capped at 4 GiB
(``ulimit -v``) and a one-minute timeout, and checks the promise every command makes for bad input:
exit code 2, exactly one ``error:`` line, no traceback, not killed by a signal.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

ADDRESS_SPACE = 4 * 2**30
TIME_LIMIT = 60


def _cap_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run_stylegan(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", STYLEGAN_CACHE_DIR=str(Path(cwd or ".") / "cache"))
    return subprocess.run([sys.executable, "-m", "stylegan", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=TIME_LIMIT, preexec_fn=_cap_address_space)


def run_refused(args: list[str], cwd: Path | None = None, expect: str | None = None) -> str:
    """Run and check the one-line refusal; returns the error line. ``expect``: a substring it must contain."""
    result = run_stylegan(args, cwd)
    stderr_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, (
        f"exit {result.returncode} (negative = killed by a signal)\nstdout: {result.stdout[-2000:]}\n"
        f"stderr: {result.stderr[-4000:]}")
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    errors = [line for line in stderr_lines if line.startswith("error: ")]
    assert len(errors) == 1, f"expected one error line, got:\n{result.stderr[-4000:]}"
    assert len(errors[0]) <= 2000, f"error line of {len(errors[0])} characters"
    if expect is not None:
        assert expect in errors[0], errors[0]
    return errors[0]
