"""The package's import graph has no cycle (module-level and function-level imports, read with ast), and
`import rhm` does not load torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import rhm

SRC = Path(rhm.__file__).resolve().parent
PACKAGE = "rhm"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute name of `from <level dots><module> import ...` written in module `importer`."""
    if level == 0:
        return module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def import_graph() -> dict[str, set[str]]:
    """module -> the rhm modules it imports anywhere in its body (a `from pkg import name` counts as importing
    pkg.name when that is a module, else pkg)."""
    files = {module_name(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = resolve(mod, is_pkg, node.level, node.module)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in files and "." in t:  # `import rhm.experiments.store` -> that module
                    t = t.rsplit(".", 1)[0]
                if t in files and t != mod and t.split(".")[0] == PACKAGE:
                    deps.add(t)
        graph[mod] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None. Edges from a submodule to its own parent
    package are left out (Python has initialised the parent before the child runs: `from . import register`)."""
    edges = {m: {d for d in ds if not m.startswith(d + ".")} for m, ds in graph.items()}
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(edges.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"rhm.a": {"rhm.b"}, "rhm.b": {"rhm.c"}, "rhm.c": {"rhm.a"}, "rhm.d": set()}
    assert find_cycle(graph) == ["rhm.a", "rhm.b", "rhm.c", "rhm.a"]
    assert find_cycle({"rhm.a": {"rhm.b"}, "rhm.b": set()}) is None
    assert resolve("rhm.experiments.store", False, 2, "grammar") == "rhm.grammar"
    assert resolve("rhm.cli", True, 1, "_common") == "rhm.cli._common"


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert len(graph) > 30 and "rhm.experiments.registry" in graph["rhm.experiments.report"]
    assert "rhm.inference" in graph["rhm.experiments.tasks"]  # function-level imports count
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_import_rhm_does_not_load_torch():
    code = "import sys, rhm, rhm.experiments, rhm.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
