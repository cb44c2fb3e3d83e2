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


# The longest test files first. make test runs pytest-xdist with --dist loadscope --no-loadscope-reorder: each file
# goes whole to one worker, files handed out in the collected order to whichever worker is free. Without this
# (or with xdist's default reorder by number of tests) a long file with few tests (test_defaults: 13 tests, ~480 s
# under load) started last and ran alone at the end. Seconds each on a loaded 2-core machine (pytest --durations,
# December 2026); the other files keep their order after these.
LONG_FILES_FIRST = (
    "test_defaults.py",  # ~480: three learners' defaults at their P* threshold
    "test_chaining_plus.py",  # ~300
    "test_baselines.py",  # ~300
    "test_chaining_plus_large.py",  # ~280
    "test_docs_shell.py",  # ~280: the README's first sweep
    "test_chaining_plus_class_structure.py",  # 110-370 (one test, ten dense fits; the spread is the load's)
    "test_docs.py",  # ~180: every page's python examples
    "test_lm_tasks.py",  # ~140
    "test_experiments.py",  # ~110
    "test_bad_input.py",  # ~90
    "test_learner_variants.py",  # ~80
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONG_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within a file is kept
