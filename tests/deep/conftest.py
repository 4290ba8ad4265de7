import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One torch thread in the deep tests (shared CI cores), restored afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
