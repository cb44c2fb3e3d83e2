"""The shell lines of the README and docs: they paste into a shell, name real `rhm` commands and options, and
the cheap ones run. Split from test_docs.py (the python examples), whose page list it uses, so that make test
runs the two on different workers (pytest-xdist --dist loadscope gives each file to one worker)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from test_docs import DOCS, PAGES  # tests/ is on the path (pytest's rootdir)

# --------------------------------------------------------------------------- shell lines of the README and docs
SHELL_BLOCK = re.compile(r"^```(?:bash|sh)\n(.*?)^```", re.S | re.M)


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
