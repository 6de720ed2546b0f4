"""Running one hostile input through the real command line, under the limits a user's machine has.

:func:`run_refused` runs ``stylegan ARGS`` in a process of its own with its address space capped at 4 GiB
(``ulimit -v``) and a one-minute timeout, and checks the promise every command makes for bad input:
exit code 2, exactly one ``error:`` line, no traceback, not killed by a signal.

The process is forked from a warm interpreter (tests/hostile/zygote.py) that imported the command line
once, which saves the 1.5 s a fresh interpreter spends importing torch for each of some 180 inputs.
``STYLEGAN_HOSTILE_FRESH=1`` (or a test that replaces :func:`_cap_address_space`) starts a fresh
``python -m stylegan`` instead.
"""

from __future__ import annotations

import atexit
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ADDRESS_SPACE = 4 * 2**30
TIME_LIMIT = 60


def _cap_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run_stylegan(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", STYLEGAN_CACHE_DIR=str(Path(cwd or ".") / "cache"))
    if os.environ.get("STYLEGAN_HOSTILE_FRESH") == "1" or _cap_address_space is not _DEFAULT_CAP:
        return subprocess.run([sys.executable, "-m", "stylegan", *args], capture_output=True, text=True, cwd=cwd,
                              env=env, timeout=TIME_LIMIT, preexec_fn=_cap_address_space)
    return _Zygote.shared().run(args, Path(cwd or ".").resolve(), env)


_DEFAULT_CAP = _cap_address_space


class _Zygote:
    """The warm interpreter of tests/hostile/zygote.py, started once per test session."""

    _instance: "_Zygote | None" = None

    @classmethod
    def shared(cls) -> "_Zygote":
        if cls._instance is None or cls._instance.process.poll() is not None:
            cls._instance = cls()
            atexit.register(cls._instance.close)
        return cls._instance

    def __init__(self):
        script = Path(__file__).with_name("zygote.py")
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, OMP_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
        self.process = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=env, cwd=root)
        if json.loads(self.process.stdout.readline() or "{}").get("ready") is not True:
            raise RuntimeError("the hostile-test zygote did not start")

    def run(self, args: list[str], cwd: Path, env: dict[str, str], entry: str = "stylegan.cli:main",
            time_limit: float = TIME_LIMIT) -> subprocess.CompletedProcess:
        """``entry(args)`` ("module:function") in a forked child; the default is the ``stylegan`` command."""
        with tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            request = dict(args=list(args), cwd=str(cwd), env=env, stdout=str(out), stderr=str(err),
                           address_space=ADDRESS_SPACE, time_limit=time_limit, entry=entry)
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            answer = json.loads(self.process.stdout.readline())
            stdout = out.read_text(errors="replace") if out.exists() else ""
            stderr = err.read_text(errors="replace") if err.exists() else ""
        if answer["returncode"] is None:
            raise subprocess.TimeoutExpired(["stylegan", *args], time_limit, stdout, stderr)
        return subprocess.CompletedProcess(["stylegan", *args], answer["returncode"], stdout, stderr)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=10)


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
