"""Reports: ``write_report(store, out_dir)`` writes index.md and index.html (same content) with tables, fits and
PNG figures, each figure followed by a sentence on what it shows.

Content: the summary of ``rhm reproduce`` when the store holds one (each experiment of the registry re-analysed
from the rows), then every other sweep in the store (:func:`rhm.experiments.analysis.analyze_sweep`).
"""

from __future__ import annotations

from pathlib import Path

from .._io import atomic_path
from .analysis import analyze_sweep
from .registry import EXPERIMENTS, MODES
from .render import render_html, render_md
from .store import ResultStore
from .verdicts import Section


def _mode_of(store, meta: dict | None) -> str:
    """The mode of a reproduce store: its meta's, else the one most of its sweep names carry."""
    if meta and meta.get("mode"):
        return meta["mode"]
    names = store.sweeps()
    return max(MODES, key=lambda m: sum(n.startswith(f"{m}-") for n in names))


def present_sections(store, mode: str, experiments=None) -> list[str]:
    """Ids of the experiments with at least one of their sweeps in the store (whatever the meta says)."""
    names = set(store.sweeps())
    return [rid for rid, exp in (experiments or EXPERIMENTS).items() if names & set(exp.sweep_names(mode))]


def completeness(exp, store, mode: str) -> tuple[list, int]:
    """(missing RunConfigs, runs needed) of every job of `exp` in `mode` (failed runs count as missing)."""
    from .runner import missing_runs

    missing, needed = [], 0
    for job in exp.runs(mode):
        m, n = missing_runs(job, store)
        missing += m
        needed += n
    return list({c.key: c for c in missing}.values()), needed


def _missing_table(missing) -> tuple:
    """One row per (sweep, learner, grammar): how many runs are missing and at which sizes."""
    groups = {}
    for c in missing:
        g = c.grammar or {}
        gname = " ".join(f"{k}={g[k]}" for k in ("v", "m", "s", "L", "n_classes", "seed") if k in g) or "—"
        groups.setdefault((c.sweep or "—", c.label or c.learner or c.task, gname), []).append(c.train_size)
    rows = [[sw, lab, gname, len(sizes), ", ".join(str(p) for p in sorted(set(sizes)))]
            for (sw, lab, gname), sizes in sorted(groups.items())]
    return ("table", ["sweep", "learner", "grammar (seed = grammar seed)", "runs missing", "sizes P"], rows)


def reproduce_blocks(store, meta: dict, out_dir: Path, experiments=None) -> tuple[list, set, list]:
    """The reproduce part of a report: summary table then one section per experiment; also the sweeps it covers.

    A section is shown when the meta lists it or when any of its sweeps is in the store (an interrupted
    reproduce). A section with runs missing or failed gets the verdict "incomplete: k of n runs missing", no
    verdict of its law, and a table of what is missing."""
    experiments = experiments or EXPERIMENTS
    mode = _mode_of(store, meta)
    status = dict(meta.get("sections", {}))
    for rid in present_sections(store, mode, experiments):
        status.setdefault(rid, {"status": "found"})  # runs in the store, not in the meta: analyse them
    sections = []
    for rid, exp in experiments.items():
        st = status.get(rid)
        if st is None:
            continue
        if st["status"] in ("skipped", "error") and rid not in present_sections(store, mode, {rid: exp}):
            sec = Section(rid, exp.title, "", verdict=st["status"], numbers=st.get("reason", ""))
        else:
            try:
                sec = exp.analyze(exp, store, mode, out_dir)
            except Exception as err:  # analysis of partial data must not kill the report
                sec = Section(rid, exp.title, "", verdict="error", numbers=f"analysis failed: "
                              f"{type(err).__name__}: {err}")
            if st.get("failed_runs"):
                sec.numbers += f" ({st['failed_runs']} runs failed: {st.get('first_failure', '')})"
            try:
                missing, needed = completeness(exp, store, mode)
            except Exception as err:  # a registry that cannot expand here: say so rather than judge
                missing, needed = None, 0
                sec.numbers += f" (completeness not checked: {type(err).__name__}: {err})"
            if missing:
                was = sec.verdict
                sec.verdict = f"incomplete: {len(missing)} of {needed} runs missing"
                sec.numbers = (f"no verdict on partial data (it would read {was!r}); " if was not in
                               ("skipped", "error") else "") + sec.numbers
                sec.blocks.insert(0, _missing_table(missing))
                sec.blocks.insert(0, ("p", f"{len(missing)} of the {needed} runs this section's verdict needs are "
                                           "missing or failed (adaptive searches: counted up to their first "
                                           "missing round); `rhm reproduce --section " + rid + "` runs them."))
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
    if rep or present_sections(store, _mode_of(store, rep), experiments):  # an interrupted reproduce too
        rep = rep or {}
        rblocks, covered, summary = reproduce_blocks(store, rep, out_dir, experiments)
        blocks += rblocks
    for name in [s for s in store.sweeps() if s not in covered]:
        blocks += analyze_sweep(store, name, out_dir)
    return blocks, summary, store.failures()
