"""``stylegan <args>`` for torchrun tests, then a check that leaving the process group really ended it.

A group that outlives ``destroy_process_group`` keeps its gloo threads until interpreter shutdown, where
tearing them down now and then aborts the finished process (SIGABRT). That abort is rare; the threads
still running after the command are not, so this script fails (exit 3) whenever they are there.
"""

import os
import sys

from stylegan.cli import main


def communication_threads() -> list[str]:
    tasks = f"/proc/{os.getpid()}/task"
    if not os.path.isdir(tasks):  # not Linux: nothing to check
        return []
    names = []
    for task in os.listdir(tasks):
        try:
            with open(f"{tasks}/{task}/comm") as f:
                names.append(f.read().strip())
        except OSError:  # the thread ended meanwhile
            pass
    return [n for n in names if "gloo" in n or "nccl" in n]


if __name__ == "__main__":
    code = main(sys.argv[1:])
    left = communication_threads()
    if code == 0 and left:
        print(f"the process group outlived the command: threads {left} still run", file=sys.stderr)
        code = 3
    sys.exit(code)
