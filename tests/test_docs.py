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


# --------------------------------------------------------------------------- shell lines of the README and docs
SHELL_BLOCK = re.compile(r"^```(?:bash|sh)\n(.*?)^```", re.S | re.M)
TEST_TOOLS = re.compile(r"^\s*(import|from)\s+(pytest|hypothesis)\b", re.M)


def _shell_lines():
    """(page, line) for every command line of every ```bash block, its trailing comment removed."""
    import shlex

    out = []
    for page in PAGES:
        for block in SHELL_BLOCK.findall(page.read_text()):
            for line in block.splitlines():
                lex = shlex.shlex(line, posix=True, punctuation_chars=True)
                lex.whitespace_split, lex.commenters = True, "#"
                words = list(lex)
                if words:
                    out.append((page.name, words))
    return out


SHELL_LINES = _shell_lines()


def test_documented_examples_import_no_test_tools():
    """A reader's environment has no pytest: no documented example may need it."""
    for page in PAGES:
        for code in BLOCK.findall(page.read_text()):
            assert not TEST_TOOLS.search(code), f"{page.name}: an example imports a test tool"


def test_shell_lines_paste_as_written():
    """No brackets for optional flags, no `a|b` alternatives a shell would take as a pipe or redirection."""
    assert len(SHELL_LINES) >= 15
    for page, words in SHELL_LINES:
        bad = [w for w in words if w in ("|", "||", "&", "&&", ";", "<", ">", "(", ")") or w.startswith("[")]
        assert not bad, f"{page}: {' '.join(words)!r} does not paste into a shell ({bad})"


@pytest.mark.parametrize("words", [w for _, w in SHELL_LINES if w[0] == "rhm"], ids=lambda w: " ".join(w[:3]))
def test_rhm_lines_name_real_commands_and_options(words):
    """Every documented `rhm ...` line parses: its command and every option exist, every value has its type."""
    import typer.main

    from rhm.cli import app

    group = typer.main.get_command(app)
    ctx = group.make_context("rhm", list(words[1:2]), resilient_parsing=True)
    name, cmd, rest = group.resolve_command(ctx, list(words[1:]))
    assert cmd is not None, f"no command {words[1]!r}"
    cmd.make_context(f"rhm {name}", list(rest))  # raises click.UsageError / BadParameter on a wrong option


def _shrunk(words: list[str], root: Path) -> list[str] | None:
    """The line made cheap (small sizes, one-epoch torch fits, dry runs of full grids) or None to leave it out:
    lines that need a cluster or a file the reader writes themselves (my_sweep.toml)."""
    from rhm import learners

    cap = {"--train-size": 300, "--test-size": 200, "--n": 1000}
    out = []
    for i, w in enumerate(words):
        prev = words[i - 1] if i else ""
        if prev in cap:
            w = str(min(int(w), cap[prev]))
        elif (root / w).is_file():  # a file of the repository (a sweep file): its absolute path
            w = str(root / w)
        out.append(w)
    cmd = out[1]
    if "--address" in out or "--executor" in out or any(w.endswith(".toml") and not Path(w).is_absolute()
                                                         for w in out):
        return None
    if cmd == "reproduce" or (cmd == "sweep" and "first_sweep" not in " ".join(out)):
        out = [w for w in out if w != "--dry-run"] + ["--dry-run", "--time-budget", "0"]
    if cmd == "train" and "--learner" in out:
        cls = learners.get(out[out.index("--learner") + 1])
        if "epochs" in cls.defaults():
            out += ["--hp", "epochs=2"]
    return out[1:]


@pytest.mark.slow  # the README's first sweep (about a minute)
@pytest.mark.parametrize("page", sorted({p for p, w in SHELL_LINES if w[0] == "rhm"}))
def test_rhm_lines_run(page, tmp_path, monkeypatch, one_thread):
    """Each page's cheap `rhm` lines run in order in one directory (report reads what sweep wrote), exit 0.
    In-process through typer's CliRunner: the `rhm` script and `python -m rhm` call this same `app`, and a fresh
    interpreter per line cost a torch import (5-10 s on a loaded 2-core machine) for each of its ~20 lines."""
    from typer.testing import CliRunner

    from rhm.cli import app

    root = DOCS.parent
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    runner = CliRunner()
    ran = 0
    for p, words in SHELL_LINES:
        if p != page or words[0] != "rhm" or (args := _shrunk(words, root)) is None:
            continue
        if args[0] == "report" and not (tmp_path / args[args.index("--store") + 1]).exists():
            continue  # the docs' report of a store a cluster or a long sweep wrote
        out = runner.invoke(app, args)
        assert out.exit_code == 0, f"{page}: {' '.join(words)}\n{out.exception!r}\n{out.output[-2000:]}"
        ran += 1
    assert ran >= 1
