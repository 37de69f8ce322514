"""Suite-wide settings.

The tests fit many tiny models. One intra-op thread is as fast for them as several, and it
keeps run times stable when the machine is shared (OpenMP threads that spin against other
processes can make a tiny model tens of times slower).
"""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
