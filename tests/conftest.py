"""Suite-wide settings: tiny networks run fastest, and most repeatably, on one CPU thread.

``OMP_NUM_THREADS=N python -m pytest`` runs the whole suite on N torch threads instead, so that results
which depend on how work is split between threads are checked too (the suite must pass with 1 and 2).

``--device cuda`` runs the device-generic tests (those taking the ``device`` fixture: the ops, the networks
against their float64 reference, fp16 blocks, the optimizer, training phases) on a GPU, with TF32 off so
float32 stays float32: ``python -m pytest --device cuda tests/ops tests/networks``. The default is the CPU.

Also here: :func:`run_torchrun`, which the training and metrics tests use to run ``stylegan`` on several
processes.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", help="torch device for the device-generic tests (cpu, cuda, cuda:N)")


def pytest_configure(config):
    try:
        device = torch.device(config.getoption("--device"))
    except RuntimeError as e:
        raise pytest.UsageError(f"--device: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError("--device cuda: this machine has no CUDA device (the default is --device cpu)")


@pytest.fixture(scope="session")
def device(request):
    device = torch.device(request.config.getoption("--device"))
    from stylegan.ops.backends import cuda_arithmetic
    with cuda_arithmetic(benchmark=False, allow_tf32=False):
        yield device


def suite_threads() -> int:
    """torch threads for the in-process tests: OMP_NUM_THREADS when set to a whole number ≥ 1, else 1."""
    text = os.environ.get("OMP_NUM_THREADS", "")
    return int(text) if text.isdigit() and int(text) >= 1 else 1


@pytest.fixture(autouse=True, scope="session")
def _one_cpu_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(suite_threads())
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="session")
def _stop_signals_as_in_a_terminal():
    """A shell starts background jobs (``pytest &``, CI runners) with SIGINT ignored, and every child inherits
    that; the stop-signal tests need the handlers a terminal gives, so the suite sets them itself."""
    from stylegan.data.dataset import STOP_SIGNALS
    defaults = {sig: signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL for sig in STOP_SIGNALS}
    before = {sig: signal.getsignal(sig) for sig in defaults}
    for sig, handler in defaults.items():
        if before[sig] == signal.SIG_IGN:
            signal.signal(sig, handler)
    yield
    for sig, handler in before.items():
        signal.signal(sig, handler)


@pytest.fixture(autouse=True)
def _still_one_cpu_thread():
    """The one setting above serves every test, so none may leave another thread count behind."""
    yield
    assert torch.get_num_threads() == suite_threads(), "this test changed torch's thread count without restoring it"


@pytest.fixture
def gpu_device(device, monkeypatch):
    """The test device, scheduled as CUDA: fp16-marked blocks compute in fp16, activations stay NCHW, eval
    uses grouped modulated convolutions and D takes fakes and reals in two passes. On the CPU this runs
    the GPU's code paths (all but its kernels) on machines without a GPU."""
    from stylegan.networks import stylegan2
    monkeypatch.setattr(stylegan2, "SCHEDULE_AS", {"cpu": "cuda"})
    return device


def run_torchrun(processes: int, *args) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=N stylegan <args>`` (one CPU thread each), output captured.

    Each process also checks at its end that leaving the process group ended it
    (tests/stylegan_then_check_threads.py), and one killed by a signal prints its Python stacks.
    """
    script = Path(__file__).with_name("stylegan_then_check_threads.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
           str(script), *map(str, args)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONFAULTHANDLER="1")
    env.pop("WORLD_SIZE", None)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def torchrun_report(result: subprocess.CompletedProcess) -> str:
    """What a failed torchrun printed; a worker's own message comes before torchrun's long summary."""
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-12000:]}"
