"""Suite-wide settings: tiny networks run fastest, and most repeatably, on one CPU thread."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_cpu_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def fp16_on_cpu(monkeypatch):
    """Let fp16-marked blocks really compute in fp16 on the CPU, as they do on CUDA, so that arithmetic is
    tested on machines without a GPU."""
    from stylegan.networks import stylegan2
    monkeypatch.setattr(stylegan2, "FP16_DEVICE_TYPES", stylegan2.FP16_DEVICE_TYPES | {"cpu"})
