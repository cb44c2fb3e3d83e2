"""Suite-wide settings. The `slow` marker (declared in pyproject.toml) tags the long statistical tests with
``@pytest.mark.slow`` in their own files; `make test-fast` (pytest -m "not slow") runs everything else."""

import pytest


@pytest.fixture
def one_thread():
    """torch on one thread for the test (the networks' fits are small; threads only add noise and contention)."""
    import torch  # here, not at collection: some tests check what `import rhm` loads

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
