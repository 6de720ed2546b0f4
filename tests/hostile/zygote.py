"""A warm interpreter that forks one child per command, so each hostile input costs milliseconds, not the
1.5 s a fresh interpreter spends importing torch.

Run as ``python tests/hostile/zygote.py``: it imports the command line and every command module once, then
reads one JSON request per line from stdin (args, cwd, env, output files, address-space cap, time limit),
forks, and answers one JSON line ``{"returncode": N}`` (negative: killed by that signal; null: timed out
and killed). The child is what a fresh ``python -m stylegan`` would be for the command: its own working
directory, environment, rlimit, stdin from /dev/null, stdout/stderr to the given files, and an uncaught
exception printed as a traceback with exit code 1.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import signal
import sys
import time
import traceback


def _run_child(request: dict) -> None:
    """In the forked child: become the command's process, run it, never return."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        limit = request["address_space"]
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        stdin = os.open(os.devnull, os.O_RDONLY)
        stdout = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        stderr = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for source, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
            os.dup2(source, target)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        module, name = request.get("entry", "stylegan.cli:main").split(":")
        main = getattr(importlib.import_module(module), name)  # another entry only in the harness's own tests
        try:
            code = main(request["args"])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # what the interpreter does with an uncaught exception
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code if isinstance(code, int) else 1)


def _wait(pid: int, time_limit: float) -> int | None:
    """The child's return code (negative for a signal), or None after killing it at the time limit."""
    deadline = time.monotonic() + time_limit
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.01)


def serve() -> None:
    import stylegan.cli

    for target in stylegan.cli.COMMANDS.values():  # import every command once, before any fork
        importlib.import_module(target.split(":")[0])
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _run_child(request)
        print(json.dumps({"returncode": _wait(pid, request["time_limit"])}), flush=True)


if __name__ == "__main__":
    serve()
