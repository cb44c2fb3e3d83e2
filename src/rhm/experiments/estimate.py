"""What a sweep will cost before it runs (``rhm sweep --dry-run``, ``rhm reproduce --full --dry-run``).

The runs are counted exactly for grids; an adaptive sweep chooses its sizes while running, so it is costed at
its upper bound: every search takes ``max_steps`` sizes going up by ``factor`` (as if never crossing the
threshold), capped where the run caps them (``Sweep.size_cap``: P_max minus the test set for distinct inputs).
Runs that differ only by seed form a group (one learner variant, grammar, size);
one run per group is timed here, in this process on one thread (like a sweep's worker), smallest sizes first
and round-robin over the families (same learner and grammar, any size) until ``budget_s`` is spent. A group
left untimed takes a power law in its *work* from its family's two largest timed sizes (exponent clamped to
[1, 3], so conservative where fixed costs dominate; linear from one size); the first run of each learner is a
warm-up, not timed. The work of a run (:func:`work`) is P, except for learners trained by gradient steps: the
samples they process, steps x batch, where a step budget (``max_steps``) makes it independent of P (the
diffusion learner always, the torch learners once epochs x P / batch exceeds it). A family with nothing timed
is scaled from the same learner on another grammar (linear in work and in the input length s^L, labelled
"rough"); with nothing timed at all it stays "not timed" and the total says it is a lower bound.
CPU-hours = sum over runs of the seconds of one run on one CPU / 3600. Nothing is written to any store.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from .config import RunConfig, canonical_json
from .sweep import Sweep, import_modules
from .tasks import execute


def planned_configs(sweep: Sweep) -> list[RunConfig]:
    """Every run of a grid sweep; for an adaptive one, the most runs its searches can take (see module doc)."""
    if sweep.adaptive is None:
        return sweep.expand()
    from .complexity import AdaptiveSearch, error_threshold

    a, out = sweep.adaptive, []
    for g in sweep.grammar_points():
        unit = sweep.sizes.unit_size(g)
        for var in sweep.variants():
            s = AdaptiveSearch(error_threshold(g.n_classes), start=max(1, round(a.start * unit)), p_min=1,
                               p_max=sweep.size_cap(g), factor=a.factor, rel_tol=a.rel_tol, max_steps=a.max_steps)
            while (p := s.next_size()) is not None:
                s.update(p, 1.0)  # never below the threshold: the search keeps going up
                out.extend(sweep.run_for(g, var, p, seed) for seed in sweep.seeds)
    return out


def reproduce_configs(mode: str, sections=None) -> dict[str, list[RunConfig]]:
    """The planned runs of `rhm reproduce --<mode>`, per section (a run shared by two sections counts once)."""
    from .registry import EXPERIMENTS

    out, seen = {}, set()
    for rid in sections or EXPERIMENTS:
        if rid not in EXPERIMENTS:
            raise ValueError(f"section {rid!r} is not one of {list(EXPERIMENTS)}")
        cfgs = [c for job in EXPERIMENTS[rid].runs(mode)
                for c in (planned_configs(job.validate()) if isinstance(job, Sweep) else job)]
        out[rid] = [c for c in cfgs if not (c.key in seen or seen.add(c.key))]
    return out


def _group(c: RunConfig) -> tuple[str, str, int]:
    """(family, group): the family ignores size and seed, the group only the seed."""
    d = c.identity()
    d.pop("seed")
    d["hyperparameters"] = {k: v for k, v in d["hyperparameters"].items() if k != "seed"}
    size = d.pop("train_size")
    return canonical_json(d), canonical_json({**d, "train_size": size}), size


@dataclass
class Estimate:
    """Per group: label, task, grammar, train_size, runs, seconds (of one run; None if not timed), source."""

    groups: list = field(default_factory=list)

    @property
    def runs(self) -> int:
        return sum(g["runs"] for g in self.groups)

    @property
    def untimed_runs(self) -> int:
        return sum(g["runs"] for g in self.groups if g["seconds"] is None)

    @property
    def cpu_hours(self) -> float:
        return sum(g["runs"] * g["seconds"] for g in self.groups if g["seconds"] is not None) / 3600

    def lines(self, top: int = 12) -> list[str]:
        """A short table (the `top` costliest groups) and the total, for a terminal."""
        out = [f"{'learner':<16}{'grammar':<24}{'P':>9}{'runs':>6}{'s/run':>10}  source"]
        for g in sorted(self.groups, key=lambda g: -(g["seconds"] or 0) * g["runs"])[:top]:
            gr = g["grammar"]
            gtxt = f"v={gr.get('v')} m={gr.get('m')} s={gr.get('s')} L={gr.get('L')}" if gr else "-"
            sec = "?" if g["seconds"] is None else f"{g['seconds']:.3g}"
            out.append(f"{g['label'][:15]:<16}{gtxt:<24}{g['train_size']:>9}{g['runs']:>6}{sec:>10}  {g['source']}")
        if len(self.groups) > top:
            out.append(f"... {len(self.groups) - top} cheaper groups")
        bound = f" (a lower bound: {self.untimed_runs} runs not timed)" if self.untimed_runs else ""
        out.append(f"{self.runs} runs, about {self.cpu_hours:.3g} CPU-hours{bound}")
        return out


def estimate(configs, budget_s: float = 60.0, imports=(), run=execute, clock=time.perf_counter) -> Estimate:
    """Count `configs` by group and time one run per group within `budget_s` seconds (0: time nothing)."""
    if not (isinstance(budget_s, (int, float)) and budget_s >= 0 and math.isfinite(budget_s)):
        raise ValueError(f"budget_s={budget_s!r} must be a finite number of seconds >= 0")
    groups, families = {}, {}
    for c in configs:
        fam, grp, size = _group(c)
        if grp not in groups:
            groups[grp] = {"label": c.label or c.learner or c.task, "task": c.task, "grammar": c.grammar,
                           "train_size": size, "work": work(c), "runs": 0, "seconds": None, "source": "not timed",
                           "_cfg": c}
            families.setdefault(fam, []).append(grp)
        groups[grp]["runs"] += 1
    queues = [sorted(grps, key=lambda k: groups[k]["train_size"]) for grps in families.values()]
    if budget_s > 0 and groups:
        import_modules(imports)
        threads = _one_thread()
        t_end, warm = clock() + budget_s, set()
        try:
            while any(queues) and clock() < t_end:  # round-robin: each family's next-smallest size
                for q in queues:
                    if q and clock() < t_end:
                        g = groups[q.pop(0)]
                        kind = (g["task"], g["_cfg"].learner)
                        if kind not in warm:  # the first run of a learner pays imports and set-up once
                            warm.add(kind)
                            run(g["_cfg"].to_dict())
                        t0 = clock()
                        run(g["_cfg"].to_dict())
                        g["seconds"], g["source"] = clock() - t0, "timed"
        finally:
            _one_thread(threads)
    for grps in families.values():
        _extrapolate([groups[k] for k in grps])
    _from_other_grammars(list(groups.values()))
    return Estimate([{k: v for k, v in g.items() if k not in ("_cfg", "work")} for g in groups.values()])


def _fits_diffusion(c: RunConfig) -> bool:
    """A diffusion-task run that trains the diffusion learner (a transformer denoiser), not an exact grid."""
    return c.task == "diffusion" and (c.extras or {}).get("what") == "learn"


def work(c: RunConfig) -> float:
    """What one run's cost grows with: its training size P, or, for a learner trained by gradient steps, the
    samples it processes (steps x batch; steps = min(epochs x ceil(P / batch), max_steps), P / batch online, where
    extras.mask_draws = K makes each step's rows K x batch). The
    diffusion task's learner trains exactly ``max_steps`` steps whatever P."""
    P = max(c.train_size or 0, 0)
    hp = {**(c.resolved or {}), **(c.params or {})}
    if _fits_diffusion(c) and hp.get("max_steps"):
        return float(int(hp["max_steps"]) * int(hp.get("batch_size") or 32))
    if c.task == "train" and c.learner in TORCH_COST:
        batch = int(hp.get("batch_size") or 32)
        if hp.get("online") or (c.extras or {}).get("online"):
            return float(P * int((c.extras or {}).get("mask_draws") or 1))
        steps = int(hp.get("epochs") or 100) * -(-P // batch)
        if hp.get("max_steps"):
            steps = min(steps, int(hp["max_steps"]))
        return float(steps * batch)
    return float(P)


def _extrapolate(family: list[dict]) -> None:
    """Fill untimed sizes of one family from its timed ones: seconds ∝ work^a, a fitted in log-log, in [1, 3]
    (equal work, e.g. a step budget reached at every size: the same seconds)."""
    timed = sorted((g["work"], g["seconds"]) for g in family if g["seconds"] is not None and g["work"] > 0)
    if not timed:
        return
    (w1, s1), (w0, s0) = timed[-2] if len(timed) > 1 else timed[-1], timed[-1]
    # the exponent between the two largest timed sizes (fixed costs matter least there), at least linear
    a = 1.0 if w1 == w0 else min(3.0, max(1.0, math.log(max(s0, 1e-6) / max(s1, 1e-6)) / math.log(w0 / w1)))
    for g in family:
        if g["seconds"] is None and g["work"] > 0:
            g["seconds"] = s0 * (g["work"] / w0) ** a
            g["source"] = (f"extrapolated (P^{a:.2g})" if g["work"] == g["train_size"] else
                           "extrapolated (same steps)" if g["work"] == w0 else f"extrapolated (steps^{a:.2g})")


def _from_other_grammars(groups: list[dict]) -> None:
    """A learner never timed on a grammar: scale its nearest-P timed group on another grammar by P and by the
    input length s^L (both linearly; a rough figure, labelled so)."""
    def length(g):
        gr = g["grammar"]
        return gr["s"] ** gr["L"] if "s" in gr and "L" in gr else 1

    for g in groups:
        if g["seconds"] is not None or g["train_size"] <= 0:
            continue
        same = [h for h in groups if h["source"] == "timed" and h["label"] == g["label"] and h["task"] == g["task"]
                and h["train_size"] > 0]
        if same:
            h = min(same, key=lambda h: abs(math.log(h["train_size"] / g["train_size"])))
            g["seconds"] = h["seconds"] * max(g["work"], 1) / max(h["work"], 1) * length(g) / length(h)
            gr = h["grammar"]
            g["source"] = f"rough: scaled from m={gr.get('m')} L={gr.get('L')}"


def _one_thread(restore: int | None = None) -> int | None:
    """Time runs on one torch thread, as a sweep's workers do; returns the previous count to restore."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return None
    prev = torch.get_num_threads()
    torch.set_num_threads(restore or 1)
    return prev



# ------------------------------------------------------------------------------- the cheap cost model (no timing)
#: seconds of one run on one CPU thread ≈ a + b·P·d (P training samples of input length d), per learner (train
#: task) or per task, from the CPU times per section of the quick grids (docs/experiments.md). The torch learners
#: instead pay per sample-token-channel processed: 1 + b·steps·batch_size·d·width, steps = min(epochs·⌈P/batch⌉,
#: max_steps) from the run's resolved hyperparameters. One-thread CPU seconds measured / model: R4's CNN at
#: P = 256 and 1,280: 12 / 11 and 52 / 52; V2's CNN 2.8 / 2.9; LM1's CNN 6 / 8 and 26 / 33; LM2 at 512 and 4,096:
#: CNN 8 / 11 and 13 / 27, LCN 3.7 / 6.2 and 7.2 / 14, transformer 14 / 15 and 25 / 37 (early stopping makes the
#: model an upper bound). A learner or task not listed costs DEFAULT_COST; the store's own recorded times replace
#: the model where it has any.
COST_MODEL = {"kmeans": (0.1, 0.0), "chaining": (1.2, 0.0), "chaining+": (0.4, 0.0), "fcn": (0.5, 1e-3),
              "kernel": (0.5, 1e-3), "parse": (0.3, 0.0), "gaps": (0.3, 0.0), "boolean": (2.5, 0.0),
              # induce: SS1's one-thread fits take 0.4-0.6 s (d = 8) and 0.8-1 s (d = 16) at P <= 1,000
              "induce": (0.3, 7e-5),
              # moments: FG2's quick fits (v = 8, L = 2, P <= 1,140) take 0.1-0.2 s with the test set's predict
              "moments": (0.2, 1e-5)}
TORCH_COST = {"cnn": 3.9e-7, "lcn": 2e-7, "transformer": 1.1e-6}
DEFAULT_COST = (2.0, 4e-3)


def _input_length(grammar: dict) -> int:
    if not grammar or "L" not in grammar:
        return 1
    s, s0 = grammar.get("s", 2), grammar.get("s0", 0)
    return (s * (s0 + 1)) ** grammar["L"]


def model_seconds(c: RunConfig) -> float:
    """The cost model's seconds for one run (see COST_MODEL)."""
    P, d = max(c.train_size or 0, 0), _input_length(c.grammar)
    hp = {**(c.resolved or {}), **(c.params or {})}  # every hyperparameter, defaults filled
    # the diffusion learner's denoiser is a transformer trained for exactly max_steps steps (see work())
    net = "transformer" if _fits_diffusion(c) else c.learner if c.task == "train" else None
    if net in TORCH_COST:
        return 1.0 + TORCH_COST[net] * work(c) * d * int(hp.get("width") or 128)
    a, b = COST_MODEL.get(c.learner if c.task == "train" else c.task, DEFAULT_COST)
    return a + b * P * d


def quick_estimate(configs, store=None) -> Estimate:
    """Count `configs` by group and cost them without running anything: from the store's recorded wall times of
    the same family (same learner, grammar and task; the nearest size, scaled linearly in work) when `store` has
    any, else from :data:`COST_MODEL`. Runs already finished in `store` are left out (they cost nothing)."""
    configs = list(configs)
    if store is not None:
        from .runner import missing_runs

        configs, _ = missing_runs(configs, store)
    recorded = {}
    if store is not None and configs:
        for sweep in {c.sweep for c in configs if c.sweep}:
            for r in store.rows(sweep=sweep):
                if r.get("wall_seconds") and r.get("config"):
                    rc = RunConfig.from_dict(r["config"])
                    recorded.setdefault(_group(rc)[0], []).append((work(rc), float(r["wall_seconds"])))
    groups = {}
    for c in configs:
        fam, grp, size = _group(c)
        if grp not in groups:
            secs, source = model_seconds(c), "cost model"
            if recorded.get(fam):  # the nearest recorded run, scaled by work (P, or steps x batch)
                w = max(work(c), 1)
                w0, s0 = min(recorded[fam], key=lambda t: abs(math.log(max(t[0], 1) / w)))
                secs, source = s0 * w / max(w0, 1), "recorded"
            groups[grp] = {"label": c.label or c.learner or c.task, "task": c.task, "grammar": c.grammar,
                           "train_size": size, "runs": 0, "seconds": secs, "source": source}
        groups[grp]["runs"] += 1
    return Estimate(list(groups.values()))
