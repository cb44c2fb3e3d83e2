"""Every ```python block of every docs/*.md page runs: one fresh interpreter per page, blocks in order, sharing
one namespace (as a reader pasting them would)."""

from __future__ import annotations

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


@pytest.mark.slow  # one interpreter (and torch import) per page
@pytest.mark.parametrize("page", [p for p in PAGES if BLOCK.search(p.read_text())], ids=lambda p: p.stem)
def test_docs_examples_run(page, tmp_path):
    code = "\n\n".join(BLOCK.findall(page.read_text()))
    path = os.pathsep.join([str(Path(rhm.__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONPATH": path}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, f"{page.name}:\n{out.stderr[-3000:]}"
