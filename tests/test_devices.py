"""The default CPU thread count of the commands: the cores the load average leaves idle."""

import os

import pytest
import torch

from stylegan import devices


@pytest.fixture
def machine(monkeypatch):
    """A fake machine: (cores this process may use, 1-minute load average)."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)

    def set_machine(cores: int, load: float, torch_threads: int) -> None:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
        monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
        monkeypatch.setattr(torch, "get_num_threads", lambda: torch_threads)
    return set_machine


@pytest.mark.parametrize("cores, load, torch_threads, expected", [
    (2, 0.1, 2, 2),   # idle: every core (two threads ran 1.7x faster than one there)
    (2, 1.2, 2, 1),   # one core busy
    (2, 6.0, 2, 1),   # overloaded: one thread (2 threads ran 3-4x slower than one at load 3-4)
    (16, 3.4, 16, 13),
    (16, 0.0, 4, 4),  # never above what OMP_NUM_THREADS / set_num_threads chose
    (8, 20.0, 8, 1),
])
def test_threads_are_the_idle_cores(machine, cores, load, torch_threads, expected):
    machine(cores, load, torch_threads)
    assert devices.idle_cpu_threads() == expected


def test_an_omp_num_threads_setting_is_left_as_it_is(machine, monkeypatch):
    machine(2, 6.0, 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert devices.idle_cpu_threads() is None


def test_unknown_load_leaves_pytorch_its_count(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    def no_load():
        raise OSError("no load average here")
    monkeypatch.setattr(os, "getloadavg", no_load)
    assert devices.idle_cpu_threads() is None


def test_a_command_without_threads_runs_on_the_idle_cores(machine, monkeypatch):
    import click
    from click.testing import CliRunner

    from stylegan.cli.options import threads_option

    @click.command()
    @threads_option
    def command() -> None:
        pass

    chosen = []
    monkeypatch.setattr(torch, "set_num_threads", chosen.append)
    machine(2, 1.5, 2)
    assert CliRunner().invoke(command, []).exit_code == 0
    assert CliRunner().invoke(command, ["--threads", "2"]).exit_code == 0
    assert chosen == [1, 2, 2, 2]  # (set, restored) per call: the idle core, then what --threads asked for
