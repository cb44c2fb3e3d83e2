"""Checks of the optional extras, each a whole test that is skipped (at its start) when its extra is absent:
Parquet export (pyarrow: rhm[parquet]), the Ray executor (rhm[ray]), the style check (ruff: rhm[test])."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rhm.experiments import LocalExecutor, ResultStore, run_sweep

from test_experiments import HERE, canon, tiny_sweep

ROOT = HERE.parent


def test_parquet_export_has_every_row(tmp_path):
    pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install 'rhm[parquet]')")
    import pandas as pd

    sw = tiny_sweep()
    with ResultStore(tmp_path / "r.sqlite") as st:
        run_sweep(sw, st, executor=LocalExecutor(0), progress=False)
        assert st.to_parquet(tmp_path / "r.parquet") == 8
    assert sorted(pd.read_parquet(tmp_path / "r.parquet")["key"]) == sorted(r.key for r in sw.expand())


@pytest.mark.slow
def test_ray_executor_gives_identical_rows(tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'rhm[ray]')")
    from rhm.experiments import RayExecutor

    sw = tiny_sweep()
    with ResultStore(tmp_path / "local.sqlite") as st:
        run_sweep(sw, st, executor=LocalExecutor(0), progress=False)
        local = st.rows()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(HERE)] + sys.path)}})
    try:
        with ResultStore(tmp_path / "ray.sqlite") as st:
            out = run_sweep(sw, st, executor=RayExecutor(), progress=False)
            assert out.failed == [] and out.done == 8
            remote = st.rows()
    finally:
        ray.shutdown()
    assert len(local) == 8
    assert canon(remote) == canon(local)


def test_code_passes_ruff():
    ruff = pytest.importorskip("ruff", reason="ruff is not installed (pip install 'rhm[test]')")
    exe = ruff.find_ruff_bin()
    out = subprocess.run([exe, "check", "--no-cache", "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
