"""Reports: ``write_report(store, out_dir)`` writes index.md and index.html (same content) with tables, fits and
PNG figures, each figure followed by a sentence on what it shows.

Content: the summary of ``rhm reproduce`` when the store holds one (each experiment of the registry re-analysed
from the rows), then every other sweep in the store (:func:`rhm.experiments.analysis.analyze_sweep`).
"""

from __future__ import annotations

from pathlib import Path

from .._io import atomic_path
from .analysis import analyze_sweep
from .registry import EXPERIMENTS
from .render import render_html, render_md
from .store import ResultStore
from .verdicts import Section


def reproduce_blocks(store, meta: dict, out_dir: Path, experiments=None) -> tuple[list, set, list]:
    """The reproduce part of a report: summary table then one section per experiment; also the sweeps it covers."""
    experiments = experiments or EXPERIMENTS
    mode = meta.get("mode", "quick")
    status = meta.get("sections", {})
    sections = []
    for rid, exp in experiments.items():
        st = status.get(rid)
        if st is None:
            continue
        if st["status"] in ("skipped", "error"):
            sec = Section(rid, exp.title, "", verdict=st["status"], numbers=st.get("reason", ""))
        else:
            try:
                sec = exp.analyze(exp, store, mode, out_dir)
            except Exception as err:  # analysis of partial data must not kill the report
                sec = Section(rid, exp.title, "", verdict="error", numbers=f"analysis failed: "
                              f"{type(err).__name__}: {err}")
            if st.get("failed_runs"):
                sec.numbers += f" ({st['failed_runs']} runs failed: {st.get('first_failure', '')})"
        sections.append(sec)
    wall = meta.get("wall_seconds")
    ran = sum(st.get("seconds", 0.0) for st in status.values() if st.get("status") == "ran")
    blocks = [("h2", f"Summary (`rhm reproduce --{mode}`)"),
              ("p", f"Wall time {wall / 60:.1f} min for the last call with the {meta.get('executor', 'local')} "
                    f"executor ({meta.get('workers') or '?'} workers); the experiments' own run times add up to "
                    f"{ran / 60:.1f} min. A law *held* when the confidence interval of its "
                    "measured quantity lies inside the band stated in its section, *not held* when it lies outside, "
                    "*inconclusive* when it straddles the band's edge; skipped sections name what is missing."
               if wall else ""),
              ("table", ["R", "experiment", "law tested", "verdict", "numbers"],
               [[s.rid, s.title, s.law, f"**{s.verdict}**", s.numbers] for s in sections])]
    for s in sections:
        blocks.append(("h2", f"{s.rid}. {s.title} — {s.verdict}"))
        if s.law:
            blocks.append(("p", f"Law: {s.law}."))
        blocks.append(("p", f"Result: {s.numbers}"))
        blocks += s.blocks
    covered = {name for exp in experiments.values() for name in exp.sweep_names(mode)}
    summary = [{"R": s.rid, "experiment": s.title, "verdict": s.verdict, "numbers": s.numbers} for s in sections]
    return blocks, covered, summary


def write_report(store, out_dir, title: str = "rhm results", experiments=None) -> dict:
    """Write index.md, index.html and figures into out_dir (created). Returns {"blocks", "paths", "summary"}."""
    if not isinstance(store, ResultStore):
        path = Path(store)
        if not path.exists():
            raise ValueError(f"store={str(path)!r} does not exist")
        with ResultStore(path) as opened:
            return write_report(opened, out_dir, title, experiments)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with store.snapshot():  # one consistent state even while a sweep writes the store
        blocks, summary, fails = _store_blocks(store, out_dir, title, experiments)
    if fails:
        blocks.append(("h2", "Failed runs"))
        blocks.append(("p", "Runs that raised (not stored as results; a rerun retries them):"))
        blocks.append(("table", ["key", "sweep", "error"], [[f["key"], f["sweep"], f["error"].splitlines()[0][:200]]
                                                             for f in fails[-30:]]))
    with atomic_path(out_dir / "index.md") as tmp:
        tmp.write_text(render_md(blocks))
    with atomic_path(out_dir / "index.html") as tmp:
        tmp.write_text(render_html(blocks, title))
    return {"blocks": blocks, "paths": [out_dir / "index.md", out_dir / "index.html"], "summary": summary}


def _store_blocks(store, out_dir: Path, title: str, experiments=None):
    """The report's blocks, its summary rows and the failed runs, read from `store` as it is now."""
    blocks = [("h1", title), ("p", f"Store `{store.path}`: {store.count()} finished runs in "
                                   f"{len(store.sweeps())} sweeps.")]
    covered, summary = set(), []
    rep = store.get_meta("reproduce")
    if rep:
        rblocks, covered, summary = reproduce_blocks(store, rep, out_dir, experiments)
        blocks += rblocks
    for name in [s for s in store.sweeps() if s not in covered]:
        blocks += analyze_sweep(store, name, out_dir)
    return blocks, summary, store.failures()
