"""Suite-wide settings. The `slow` marker (declared in pyproject.toml) tags the long statistical tests with
``@pytest.mark.slow`` in their own files; `make test-fast` (pytest -m "not slow") runs everything else."""
