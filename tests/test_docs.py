"""Every ```python block of every docs/*.md page runs: one fresh process per page, blocks in order, sharing
one namespace (as a reader pasting them would)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rhm

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("*.md")) + [DOCS.parent / "README.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def test_every_area_has_a_page_with_examples():
    names = {p.stem for p in PAGES}
    readme = (DOCS.parent / "README.md").read_text()
    assert len(readme.splitlines()) <= 160 and "make demo" in readme and "make test" in readme
    assert {"grammar_and_sampling", "paper_learner", "chaining_plus", "baselines", "experiments",
            "extending"} <= names
    for name in ("grammar_and_sampling", "paper_learner", "chaining_plus", "baselines", "experiments",
                 "extending", "boolean"):
        assert BLOCK.search((DOCS / f"{name}.md").read_text()), f"docs/{name}.md has no python example"


EXAMPLE_PAGES = [p for p in PAGES if BLOCK.search(p.read_text())]

# One interpreter imports what the pages import (numpy, scikit-learn, torch, rhm: ~4 s of CPU, 30 s on a loaded
# 2-core machine), then runs each page in a fork of itself: a fresh process per page (a page's registrations and
# globals die with it), its blocks in order in one namespace as under `python -c`, without paying the imports
# again. Nothing has started a torch or BLAS thread before a fork.
_FORK_SERVER = r"""
import json, os, sys, traceback
import numpy, sklearn.base, torch, rhm, rhm.learners
for code, cwd, log in json.loads(sys.stdin.read()):
    pid = os.fork()
    if pid == 0:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.chdir(cwd)
        try:
            exec(compile(code, "<docs example>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
            status = 0
        except BaseException:
            traceback.print_exc()
            status = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""


@pytest.fixture(scope="module")
def example_runs(tmp_path_factory):
    """page name -> (exit status, its output): every page's examples, run once by the fork server."""
    root = tmp_path_factory.mktemp("examples")
    jobs = []
    for page in EXAMPLE_PAGES:
        (root / page.stem).mkdir()
        code = "\n\n".join(BLOCK.findall(page.read_text()))
        jobs.append((code, str(root / page.stem), str(root / f"{page.stem}.log")))
    path = os.pathsep.join([str(Path(rhm.__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONPATH": path}
    out = subprocess.run([sys.executable, "-c", _FORK_SERVER], input=json.dumps(jobs), cwd=root, env=env,
                         capture_output=True, text=True, timeout=600 * len(jobs))
    codes = out.stdout.split()
    assert out.returncode == 0 and len(codes) == len(jobs), out.stderr[-3000:]
    return {page.name: (int(c), Path(log).read_text()) for page, c, (_, _, log) in zip(EXAMPLE_PAGES, codes, jobs)}


@pytest.mark.slow  # every page's examples (one interpreter for all of them, a fork per page)
@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=lambda p: p.stem)
def test_docs_examples_run(page, example_runs):
    status, output = example_runs[page.name]
    assert status == 0, f"{page.name}:\n{output[-3000:]}"


TEST_TOOLS = re.compile(r"^\s*(import|from)\s+(pytest|hypothesis)\b", re.M)


def test_documented_examples_import_no_test_tools():
    """A reader's environment has no pytest: no documented example may need it."""
    for page in PAGES:
        for code in BLOCK.findall(page.read_text()):
            assert not TEST_TOOLS.search(code), f"{page.name}: an example imports a test tool"
