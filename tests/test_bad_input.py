"""Bad input never hangs and never tracebacks (issue 22): every command refuses it with exactly one ``error:``
line on stderr, a non-zero exit, within seconds, leaving every file as it was; killed sweeps leave no workers.

The memory limit is pinned (RHM_MEMORY_LIMIT=8G) so that what is refused does not depend on the machine.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rhm import RHM, limits
from rhm.cli import app
from rhm.experiments.store import ResultStore

runner = CliRunner()
SECONDS = 20  # per bad input, torch imports included, on a loaded 2-core machine (each takes ~1-2 s alone)
SRC = Path(__file__).resolve().parents[1] / "src"

SMALL_SWEEP = """name = "tiny"
seeds = [0]
[[grammars]]
v = 4
m = 2
L = {L}
[[learners]]
name = "kmeans"
[sizes]
values = [{sizes}]
"""


@pytest.fixture(autouse=True)
def _pinned_memory(monkeypatch):
    monkeypatch.setenv("RHM_MEMORY_LIMIT", "8G")


@pytest.fixture
def files(tmp_path):
    """A directory of things a bad path can point at: a regular file, an empty file, another program's SQLite,
    a text file, a sweep with L = 1000, a small sweep, an invalid TOML."""
    (tmp_path / "regular.txt").write_text("not a directory\n")
    (tmp_path / "empty.sqlite").touch()
    (tmp_path / "text.sqlite").write_text("hello, I am not a database\n" * 10)
    conn = sqlite3.connect(tmp_path / "other.sqlite")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes(body) VALUES ('keep me')")
    conn.commit()
    conn.close()
    (tmp_path / "huge.toml").write_text(SMALL_SWEEP.format(L=1000, sizes="100"))
    (tmp_path / "deep.toml").write_text(SMALL_SWEEP.format(L=21, sizes="100"))
    (tmp_path / "small.toml").write_text(SMALL_SWEEP.format(L=2, sizes="8"))
    (tmp_path / "bad.toml").write_text("name = \"x\"\n[[grammars]\nv = 4\n")
    (tmp_path / "npzdir.npz").mkdir()
    return tmp_path


def snapshot(root: Path) -> dict:
    """Every path under root with the SHA-256 of its bytes (None for a directory)."""
    return {str(p.relative_to(root)): None if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


def run_cli(args, cwd: Path):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        t0 = time.perf_counter()
        r = runner.invoke(app, [str(a) for a in args])
        return r, time.perf_counter() - t0
    finally:
        os.chdir(old)


def assert_one_error_line(r, seconds: float, must: str):
    assert r.exception is None or isinstance(r.exception, SystemExit), f"traceback: {r.exception!r}"
    assert r.exit_code != 0, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.output
    assert must in lines[0], lines[0]
    assert seconds < SECONDS, f"took {seconds:.1f} s"


G = ("--v", 8, "--m", 4, "--L", 3)
BAD = [
    # huge requests: refused from the parameters, before anything is allocated
    (("sample", "--v", 200, "--m", 200, "--L", 30, "--n", 1000, "--out", "x.npz"), "too large"),
    (("sample", *G, "--n", 10_000_000_000, "--out", "x.npz"), "--n=10000000000: too large"),
    (("sample", "--v", 8, "--m", 4, "--L", 40, "--n", 10, "--out", "x.npz"), "too large"),
    (("sample", "--v", 8, "--m", 4, "--L", 10**8, "--n", 1, "--out", "x.npz"), "too large"),
    (("train", "--learner", "kmeans", "--v", 200, "--m", 200, "--L", 20, "--train-size", 2000), "too large"),
    (("train", "--learner", "cnn", "--v", 8, "--m", 4, "--L", 1000, "--train-size", 10), "too large"),
    (("boolean", "--d", 100_000_000, "--levels", 25), "too large"),
    # huge networks: counted on the meta device, refused before any weight is allocated
    (("train", "--learner", "cnn", *G, "--train-size", 100, "--hp", "width=200000"), "width: too large: a CNN"),
    (("train", "--learner", "lcn", *G, "--train-size", 100, "--hp", "width=10000000"), "width: too large"),
    (("train", "--learner", "transformer", *G, "--train-size", 100, "--hp", "width=1000000"), "width: too large"),
    (("train", "--learner", "kmeans", *G, "--train-size", 100, "--hp", "width=10000000000"), "width: too large"),
    (("train", "--learner", "kmeans", *G, "--train-size", 100, "--hp", "n_init=100000000000"),
     "n_init=100000000000 must be in [1, 1000]"),
    (("boolean", "--d", 16, "--levels", 2, "--train-size", 10**11), "--train-size=100000000000: too large"),
    (("sweep", "huge.toml", "--store", "s.sqlite"), "too large"),
    (("sweep", "huge.toml", "--dry-run"), "too large"),
    (("sweep", "deep.toml", "--store", "s.sqlite"), "P_max"),
    # zero, negative and out-of-range sizes
    (("sample", *G, "--n", 0, "--out", "x.npz"), "--n=0 must be >= 1"),
    (("sample", *G, "--n", -3, "--out", "x.npz"), "--n=-3 must be >= 1"),
    (("sample", *G, "--n", 200_000, "--no-replace", "--out", "x.npz"), "exceeds num_inputs=131072"),
    (("sample", "--v", 0, "--m", 4, "--L", 3, "--n", 5, "--out", "x.npz"), "v=0 must be >= 2"),
    (("train", "--learner", "kmeans", *G, "--train-size", 0), "--train-size=0 must be >= 1"),
    (("train", "--learner", "kmeans", *G, "--train-size", 10, "--test-size", -1), "--test-size=-1 must be >= 1"),
    (("train", "--learner", "kmeans", *G, "--train-size", 10, "--threads", 0), "--threads=0 must be >= 1"),
    (("train", "--learner", "kmeans", *G, "--train-size", 2000, "--test-size", 200_000), "exceeds the 131072"),
    (("train", "--learner", "nope", *G, "--train-size", 10), "nope"),
    (("info", "--v", 8, "--m", 4, "--L", -1), "--L=-1 must be >= 1"),
    (("boolean", "--d", 16, "--levels", 5), "--levels=5 needs --d >= 2**levels = 32"),
    (("boolean", "--d", 16, "--levels", 10**8), "--levels=100000000 needs --d >= 2**levels"),
    (("boolean", "--d", 0), "--d=0 must be >= 2"),
    (("sweep", "small.toml", "--store", "s.sqlite", "--workers", -1), "workers=-1 must be >= 0"),
    # bad paths, checked before any work
    (("sample", *G, "--n", 5, "--out", "regular.txt/x.npz"), "regular.txt is not a directory"),
    (("sample", *G, "--n", 5, "--out", "missing/x.npz"), "does not exist"),
    (("sample", *G, "--n", 5, "--out", "npzdir.npz"), "is a directory"),
    (("sample", *G, "--n", 5, "--out", "x.csv"), "must end with .npz"),
    (("sample", "--grammar", "regular.txt", "--n", 5, "--out", "x.npz"), "not valid JSON"),
    (("sweep", "small.toml", "--store", "regular.txt/s.sqlite"), "regular.txt is not a directory"),
    (("sweep", "small.toml", "--store", "s.sqlite", "--csv", "regular.txt/r.csv"), "--csv"),
    (("sweep", "small.toml", "--store", "s.sqlite", "--parquet", "regular.txt/r.parquet"), "--parquet"),
    (("sweep", "missing.toml"), "cannot read sweep file"),
    (("sweep", "bad.toml"), "invalid TOML"),
    (("report", "--store", "missing.sqlite", "--out", "rep"), "does not exist"),
    (("report", "--store", "small.toml", "--out", "rep"), "not an rhm results store"),
    (("reproduce", "--quick", "--out", "regular.txt/rep"), "regular.txt is a file"),
    (("reproduce", "--quick", "--out", "regular.txt"), "not a directory"),
    # not rhm stores: refused without changing a byte (the snapshot below compares every file)
    (("report", "--store", "empty.sqlite", "--out", "rep"), "empty file"),
    (("report", "--store", "other.sqlite", "--out", "rep"), "not an rhm results store"),
    (("report", "--store", "text.sqlite", "--out", "rep"), "not an rhm results store"),
    (("sweep", "small.toml", "--store", "other.sqlite"), "not an rhm results store"),
    (("sweep", "small.toml", "--store", "text.sqlite"), "not an rhm results store"),
]


@pytest.mark.parametrize("args, must", BAD, ids=[" ".join(map(str, a))[:60] for a, _ in BAD])
def test_bad_input_is_one_error_line_and_changes_nothing(files, args, must):
    before = snapshot(files)
    r, seconds = run_cli(args, files)
    assert_one_error_line(r, seconds, must)
    assert snapshot(files) == before


def test_report_out_must_be_a_directory(files):
    with ResultStore(files / "ok.sqlite"):
        pass
    before = snapshot(files)
    r, seconds = run_cli(("report", "--store", "ok.sqlite", "--out", "regular.txt"), files)
    assert_one_error_line(r, seconds, "--out regular.txt exists and is not a directory")
    assert snapshot(files) == before


@pytest.mark.parametrize("module, args, install", [
    ("ray", ("sweep", "small.toml", "--store", "s.sqlite", "--executor", "ray"), "pip install 'rhm[ray]'"),
    ("ray", ("reproduce", "--quick", "--out", "rep", "--executor", "ray"), "pip install 'rhm[ray]'"),
    ("pyarrow", ("sweep", "small.toml", "--store", "s.sqlite", "--parquet", "r.parquet"),
     "pip install 'rhm[parquet]'"),
])
def test_missing_optional_dependency_names_the_install_command(files, monkeypatch, module, args, install):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    before = snapshot(files)
    r, seconds = run_cli(args, files)
    assert_one_error_line(r, seconds, install)
    assert snapshot(files) == before


def test_info_answers_on_any_grammar_in_seconds():
    """Astronomical grammars: exit 0, d exact, num_inputs as a base-10 log (exact formula), why rho is absent."""
    t0 = time.perf_counter()
    r = runner.invoke(app, ["info", "--v", "64", "--m", "64", "--L", "1000", "--json"])
    assert r.exit_code == 0, r.output
    assert time.perf_counter() - t0 < SECONDS
    out = json.loads(r.stdout)
    assert out["d"] == 2**1000 and out["num_inputs"] is None and out["rho"] is None and out["not_computed"]
    r = runner.invoke(app, ["info", "--v", "64", "--m", "64", "--L", "40", "--json"])
    out = json.loads(r.stdout)
    # log10(64 * 64**(2**40 - 1)) = 2**40 log10(64), to double precision (relative 1e-12)
    assert math.isclose(out["log10_num_inputs"], 2**40 * math.log10(64), rel_tol=1e-12)
    assert out["num_inputs"] is None and out["d"] == 2**40 and out["nc_m_L"] == 64 * 64**40
    small = json.loads(runner.invoke(app, ["info", "--v", "8", "--m", "4", "--L", "3", "--json"]).stdout)
    assert small["num_inputs"] == str(8 * 4**7) and small["rho"]["1"] > 0  # small grammars: exact, with gaps


def test_library_refuses_before_allocating(monkeypatch):
    """RHM.sample / SparseRHM.sample raise a ResourceLimitError (a ValueError and a MemoryError) naming the
    parameter, the estimate and the limit; the memory limit comes from RHM_MEMORY_LIMIT when set."""
    assert limits.available_memory() == 8 * 2**30
    g = RHM(8, 4, 2, 3, seed=0)
    with pytest.raises(limits.ResourceLimitError, match=r"n=10000000000: too large: .* 74.5 GiB, above the 8 GiB"):
        g.sample(10**10, seed=0)
    assert issubclass(limits.ResourceLimitError, ValueError) and issubclass(limits.ResourceLimitError, MemoryError)
    deep = RHM(4, 2, 2, 1000, seed=0)  # tables are small; one input has 2**1000 tokens
    with pytest.raises(ValueError, match="L=1000: too large"):
        deep.sample(1, seed=0)
    with pytest.raises(ValueError, match="too large"):
        RHM(64, 64, 2, 10**6, seed=0)  # 10**6 levels of tables: ~98 GiB
    from rhm.sparse import SparseRHM

    with pytest.raises(ValueError, match="too large"):
        SparseRHM(4, 2, 2, 20, s0=3).sample(100, seed=0)
    monkeypatch.setenv("RHM_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="RHM_MEMORY_LIMIT"):
        limits.available_memory()
    monkeypatch.delenv("RHM_MEMORY_LIMIT")
    assert limits.available_memory() > 0


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(p.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkilled_sweep_leaves_no_workers(files):
    """A sweep with 2 pool workers is SIGKILLed once its first run is stored; its workers (and the resource
    tracker) must be gone within 10 s (the watchdog polls every 0.5 s; PR_SET_PDEATHSIG acts at once)."""
    (files / "long.toml").write_text(SMALL_SWEEP.format(L=2, sizes="4, 6, 8, 10, 12").replace(
        "seeds = [0]", "seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]"))
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    kids: list[int] = []
    proc = subprocess.Popen([sys.executable, "-m", "rhm", "sweep", "long.toml", "--store", "k.sqlite",
                             "--workers", "2", "--no-progress"], cwd=files, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120  # generous: a loaded machine starts workers slowly
        while time.monotonic() < deadline and proc.poll() is None:
            kids = _children(proc.pid)
            try:
                conn = sqlite3.connect(f"file:{files / 'k.sqlite'}?mode=ro", uri=True)
                done = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
                conn.close()
            except sqlite3.Error:
                done = 0
            if done and len(kids) >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the sweep ended before it could be killed: make it longer"
        assert done and len(kids) >= 2, f"no worker started within 120 s ({kids})"
        kids = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(k) for k in kids):
            time.sleep(0.2)
        survivors = [k for k in kids if _alive(k)]
        assert not survivors, f"orphans still running 10 s after the parent's SIGKILL: {survivors}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for k in kids:  # only if the test failed: never leave them behind
            if _alive(k):
                os.kill(k, signal.SIGKILL)
