"""Suite-wide settings: tiny networks run fastest, and most repeatably, on one CPU thread."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_cpu_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
