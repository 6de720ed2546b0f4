"""Suite-wide settings: tiny networks run fastest, and most repeatably, on one CPU thread.

``--device cuda`` runs the device-generic tests (those taking the ``device`` fixture: the ops, the networks
against their float64 reference, fp16 blocks, the optimizer, training phases) on a GPU, with TF32 off so
float32 stays float32: ``python -m pytest --device cuda tests/ops tests/networks``. The default is the CPU.
"""

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


@pytest.fixture(autouse=True, scope="session")
def _one_cpu_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _still_one_cpu_thread():
    """The one setting above serves every test, so none may leave another thread count behind."""
    yield
    assert torch.get_num_threads() == 1, "this test changed torch's thread count without restoring it"


@pytest.fixture
def gpu_device(device, monkeypatch):
    """The test device, scheduled as CUDA: fp16-marked blocks compute in fp16, activations stay NCHW, eval
    uses grouped modulated convolutions and D takes fakes and reals in two passes. On the CPU this runs
    the GPU's code paths (all but its kernels) on machines without a GPU."""
    from stylegan.networks import stylegan2
    monkeypatch.setattr(stylegan2, "SCHEDULE_AS", {"cpu": "cuda"})
    return device
