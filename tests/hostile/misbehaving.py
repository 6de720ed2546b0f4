"""Entries that misbehave on purpose, for the harness's own tests (tests/test_limits.py)."""

import os
import signal
import time


def killed_by_a_signal(args):
    os.kill(os.getpid(), signal.SIGSEGV)


def allocate_past_the_cap(args):
    return len(bytearray(8 * 2**30))  # twice the harness's 4 GiB address space


def uncaught_error(args):
    raise KeyError("not handled")


def hang(args):
    time.sleep(3600)
