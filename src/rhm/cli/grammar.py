"""Commands on one grammar: ``rhm info`` (sizes, signal gaps, Assumption 6) and ``rhm sample`` (draw to .npz)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from .. import limits
from ..grammar import RHM, RULE_SAMPLERS, check_variant
from ..validation import check_int
from ..varying import is_varying
from ._common import (BETA_OPT, FILTER_OPT, GRAMMAR_OPT, GRAMMAR_SEED_OPT, JSON_OPT, L_OPT_OR_FILE, M3_OPT,
                      M_OPT_OR_FILE, NC_OPT, NOISE_OPT, P2_OPT, RULES_OPT, S0_OPT, S_OPT, V_OPT_OR_FILE, ZIPF_OPT,
                      CliError, _atomic_savez, _deprecated, check_out_file, check_request, _emit, _finite, _grammar,
                      _run, app)


# `rhm info` builds the rules and computes rho/kappa only below these sizes, so that it answers in seconds on any
# grammar. oracle.signal_gaps costs, per level, ~6e-8 s per entry of the (n_classes, v m) patch weights, and
# L^2/2 products of (v, v) first-token transitions at ~40 us of overhead plus 2 v^3 flops (~1 ns each) apiece
# (measured on one loaded core at v = m = 200 and v = 2, L = 1000); it holds (v, v, n_classes) distances.
_INFO_MAX_TABLE_BYTES = 256 * 2**20
_INFO_MAX_SECONDS = 3.0


def grammar_info(g: RHM, gaps=None) -> dict:
    from .. import oracle

    gaps = gaps or oracle.signal_gaps(g)
    sizes = limits.describe(g.v, g.m, g.s, g.L, g.n_classes)
    return {
        **g.params(), **sizes, "nc_m_L": g.spec.nc_m_L,
        "rho": {str(k): _finite(v) for k, v in gaps.rho.items()},
        "m_pow_minus_l_half": {str(k): g.m ** (-k / 2) for k in gaps.rho},
        "kappa": _finite(gaps.kappa), "K_rho_max": _finite(gaps.K_rho(g.m)),
        "producible_first_patch_fraction": {str(k): v for k, v in gaps.producible.items()},
    }


def _why_not_built(v, m, s, L, n_c) -> str | None:
    """Why `rhm info` does not build this grammar's tables (None: it does)."""
    table = limits.grammar_bytes(v, m, s, L, n_c)
    if table > _INFO_MAX_TABLE_BYTES:
        return f"the rule tables would take {limits.fmt_bytes(table)} (info builds them up to " \
               f"{limits.fmt_bytes(_INFO_MAX_TABLE_BYTES)})"
    w = max(v, n_c)
    seconds = L * n_c * w * m * 6e-8 + L * L / 2 * (4e-5 + 2e-9 * w**3) + L * w * w * n_c * 1e-8
    if seconds > _INFO_MAX_SECONDS:
        return f"the signal gaps would take about {seconds:.2g} s (info computes them below {_INFO_MAX_SECONDS:g} s)"
    gap_bytes = 8 * max(w * w * n_c, 3 * n_c * w * m)
    if gap_bytes > min(_INFO_MAX_TABLE_BYTES, limits.available_memory()):
        return f"the signal gaps hold (v, v, n_classes) distances, {limits.fmt_bytes(gap_bytes)}"
    return None


def _size_lines(full, sizes: dict) -> list[str]:
    d = sizes["d"] if sizes["d"] is not None else f"2^{sizes['log2_d']:.6g}"
    n_in = f"{sizes['num_inputs']} (~{float(sizes['num_inputs']):.3g})" if sizes["num_inputs_float"] is not None \
        else sizes["num_inputs"] if sizes["num_inputs"] is not None else f"10^{sizes['log10_num_inputs']:.6g}"
    ncml = sizes["nc_m_L"] if sizes["nc_m_L"] is not None else f"10^{sizes['log10_nc_m_L']:.6g}"
    return [repr(full) if not isinstance(full, str) else full,
            f"d = {d}, num_inputs = {n_in}, n_c*m^L = {ncml}",
            f"memory: rule tables {limits.fmt_bytes(sizes['table_bytes'])}, one input "
            f"{limits.fmt_bytes(sizes['one_input_bytes'])}"]


@app.command()
def info(v: Optional[int] = V_OPT_OR_FILE, m: Optional[int] = M_OPT_OR_FILE, s: int = S_OPT,
         L: Optional[int] = L_OPT_OR_FILE, n_classes: Optional[int] = NC_OPT,
         rules: str = RULES_OPT, grammar_seed: Optional[int] = GRAMMAR_SEED_OPT,
         seed: Optional[int] = typer.Option(None, "--seed", help="deprecated spelling of --grammar-seed (info "
                                            "draws no data; --seed is the data seed in sample and train)"),
         as_json: bool = JSON_OPT,
         K_rho: Optional[float] = typer.Option(None, "--K-rho", help="check Assumption 6 for this K_rho "
                                               "(default: the largest K_rho the grammar meets)"),
         zipf: Optional[float] = ZIPF_OPT, noise: float = NOISE_OPT, s0: Optional[int] = S0_OPT,
         grammar_file: Optional[Path] = GRAMMAR_OPT, beta: Optional[float] = BETA_OPT,
         filter_level: int = FILTER_OPT, m3: Optional[int] = M3_OPT, p2: Optional[float] = P2_OPT):
    """Sizes, signal gaps rho^(l), kappa and the Assumption-6 check of one grammar (of its informative RHM
    for --s0; the gaps assume uniform rule probabilities). Answers in seconds for any size: sizes are exact
    integers or, when astronomically large, base-10 logarithms; rho and kappa are computed only when the
    grammar is small enough to build quickly, and the output says why not otherwise (exit status 0).
    A saved grammar (--grammar FILE), the soft grammar (--beta), filtered models (--filter-level) and the
    varying-tree RHM (--m3, --p2) get their sizes and rule entropies (the varying one: its length distribution);
    rho, kappa and Assumption 6 are defined for the RHM's uniform rules only."""

    def go():
        gseed = grammar_seed
        if seed is not None:
            if grammar_seed is not None:
                raise CliError("--seed (deprecated) and --grammar-seed both give the grammar's seed: give "
                               "--grammar-seed only")
            _deprecated("info --seed", "--grammar-seed")
            gseed = seed
        if grammar_file is not None or beta is not None or filter_level or m3 is not None or p2 is not None:
            g = _grammar(v, m, s, L, n_classes, rules, gseed, grammar_file, zipf, noise, s0, beta, filter_level,
                         m3, p2)
            sp = g.spec
            if isinstance(g, RHM) and sp.beta is None and not sp.filter_level:  # a saved RHM: its full report
                why = _why_not_built(g.v, g.m, g.s, g.L, g.n_classes)
                sizes = limits.describe(g.v, g.m, g.s, g.L, g.n_classes)
                if why is None:
                    return _info_rhm(g, sizes, as_json, K_rho)
            _emit(*_other_grammar_info(g, as_json))
            return
        missing = [name for name, val in (("--v", v), ("--m", m), ("--L", L)) if val is None]
        if missing:
            raise CliError(f"{', '.join(missing)} required (or --grammar FILE)")
        gseed = 0 if gseed is None else gseed
        vv, mm, ss, LL = (check_int(f"--{k}", x, lo) for k, x, lo in (("v", v, 2), ("m", m, 1), ("s", s, 2),
                                                                     ("L", L, 1)))
        n_c = vv if n_classes is None else check_int("--n-classes", n_classes, 2)
        sz0 = 0 if s0 is None else check_int("--s0", s0, 0)
        sizes = limits.describe(vv, mm, ss, LL, n_c, sz0)
        why = _why_not_built(vv, mm, ss, LL, n_c)
        if why is not None:  # what can be said from the parameters alone; the rest of validation still applies
            check_variant(zipf, noise)
            if rules not in RULE_SAMPLERS:
                raise CliError(f"--rules={rules!r} must be one of {', '.join(RULE_SAMPLERS)}")
            head = (f"RHM(v={vv}, m={mm}, s={ss}, L={LL}, n_classes={n_c}, rules={rules!r}, seed={gseed}"
                    + (f", s0={sz0}" if s0 is not None else "") + ")")
            out = {"v": vv, "m": mm, "s": ss, "L": LL, "n_classes": n_c, "rules": rules, "seed": gseed, "zipf": zipf,
                   "noise": noise, **({"s0": sz0} if s0 is not None else {}), **sizes,
                   "rho": None, "kappa": None, "assumption6": None, "theorem7": None, "not_computed": why}
            lines = _size_lines(head, sizes) + [f"rho^(l), kappa, Assumption 6 and Theorem 7: not computed: {why}"]
            _emit(out, as_json, "\n".join(lines))
            return
        _info_rhm(_grammar(v, m, s, L, n_classes, rules, gseed, None, zipf, noise, s0), sizes, as_json, K_rho)

    _run(go)


def _info_rhm(full, sizes: dict, as_json: bool, K_rho) -> None:
    """The RHM report of `rhm info`: signal gaps, kappa, Assumption 6, Theorem 7's schedule (a SparseRHM: of its
    informative RHM)."""
    from .. import oracle, theory

    g = full.base if full.spec.s0 else full  # a SparseRHM's informative RHM
    gaps = oracle.signal_gaps(g)
    out = grammar_info(g, gaps)
    out.update(full.params(), **sizes)
    k = K_rho if K_rho is not None else gaps.K_rho(g.m)
    if not (isinstance(k, float) and math.isfinite(k) and k > 0) and K_rho is None:
        k = 1.0  # one parent per level (inf) or a degenerate level (0): check the default K_rho = 1
    rep = oracle.assumption6(g, k, gaps)
    flat = [lv for lv, r in gaps.rho.items() if not r > 0]  # rho^(l) = 0: a valid but degenerate grammar
    out["assumption6"] = {"K_rho": rep.K_rho, "satisfied": rep.satisfied, "degenerate_levels": flat,
                          "holds": {str(a): b for a, b in rep.holds.items()}}
    sched = None
    if math.isfinite(gaps.kappa) and g.n_classes == g.v and g.m >= 2 and not flat:
        sched = theory.schedule(g.v, g.m, g.s, g.L, kappa=gaps.kappa, K_rho=rep.K_rho)
    out["theorem7"] = sched.to_dict() if sched else None
    lines = _size_lines(full, sizes)[:2] + [
             "rho^(l): " + ", ".join(f"l={a}: {b:.4g} (m^(-l/2)={g.m ** (-a / 2):.4g})"
                                     for a, b in gaps.rho.items()),
             f"kappa = {gaps.kappa:.4g}", str(rep)]
    lines += [f"Assumption 6 fails at level {lv} (rho = 0)" for lv in flat]
    if sched:
        lines.append(f"Theorem 7 schedule, N^(l) = 20 C kappa V^2 m^2 s L log^2(Vm kappa/delta) K_rho^-2 m^l "
                     f"(App. A.3): smallest C meeting Lemma 11's chaining condition = {sched.C_min:.4g} "
                     + ("(used), " if sched.C == sched.C_min else f"(L = 1: no condition; C = {sched.C:g} used), ")
                     + ", ".join(f"N^({lv}) = {sched.N[lv]:.3g}" for lv in sched.N)
                     + f", total N = {sched.total_samples:.3g}")
    else:
        lines.append("Theorem 7 schedule: n/a (needs n_classes == v, m >= 2, finite kappa and rho^(l) > 0 at "
                     "every level)")
    _emit(out, as_json, "\n".join(lines))


def _other_grammar_info(g, as_json: bool) -> tuple:
    """`rhm info` for a grammar that is not a plain RHM (soft, filtered, Zipf, noisy, sparse, saved): its spec, exact
    sizes and the entropy of its rules per level (nats; ln m for uniform rules). Returns _emit's arguments."""
    sp = g.spec
    if is_varying(g):
        return _varying_info(g, as_json)
    n_in = sp.num_inputs
    ent = {}
    for lv, p in enumerate(g.rule_probs):
        p = np.asarray(p, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            h = -np.where(p > 0, p * np.log(p), 0.0).sum(-1)
        ent[str(lv)] = float(h.mean())
    out = {"grammar": sp.to_dict(), "label": sp.label, "d": g.d, "vocab_size": g.vocab_size,
           "num_inputs": n_in, "log10_num_inputs": math.log10(n_in) if n_in else None,
           "rule_entropy": ent, "ln_m": math.log(g.m),
           "rho": None, "kappa": None, "assumption6": None, "theorem7": None,
           "not_computed": "rho^(l), kappa, Assumption 6 and Theorem 7 are defined for the RHM's uniform rules"}
    kind = type(g).__name__
    lines = [f"{kind}: {sp.label}",
             f"d = {g.d}, vocabulary {g.vocab_size}, num_inputs = "
             + (f"{n_in}" if n_in < 10**15 else f"10^{math.log10(n_in):.6g}")
             + (" (the support of the filtered model)" if sp.filter_level else
                " (derivations: an upper bound on distinct strings)" if sp.rules == "overlap" else ""),
             "mean rule entropy per symbol (nats, level 0 = root rules): "
             + ", ".join(f"l={a}: {b:.4g}" for a, b in ent.items()) + f"  (uniform: ln m = {math.log(g.m):.4g})",
             "rho^(l), kappa, Assumption 6 and Theorem 7: not computed (defined for the RHM's uniform rules)"]
    return out, as_json, "\n".join(lines)


def _varying_info(g, as_json: bool) -> tuple:
    """`rhm info` for a VaryingRHM: rules per arity, the exact length distribution (lengths 2**L .. 3**L)."""
    probs = g.length_distribution()
    lengths = np.arange(len(probs))
    mean = float((lengths * probs).sum())
    out = {"grammar": g.spec.to_dict(), "label": g.spec.label, "max_length": g.d, "min_length": g.min_length,
           "mean_length": mean, "vocab_size": g.vocab_size, "pad_token": g.pad_token, "f": g.f,
           "length_distribution": {str(k): float(p) for k, p in enumerate(probs) if p > 0},
           "rho": None, "kappa": None, "assumption6": None, "theorem7": None,
           "not_computed": "rho^(l), kappa, Assumption 6 and Theorem 7 are defined for the RHM's uniform rules"}
    lines = [f"VaryingRHM: {g.spec.label}",
             f"lengths {g.min_length}..{g.d} (mean {mean:.4g}), padded to {g.d} with token {g.pad_token}; "
             f"ambiguity fraction f = m2/v = {g.f:.4g}",
             "rho^(l), kappa, Assumption 6 and Theorem 7: not computed (defined for the RHM's uniform rules)"]
    return out, as_json, "\n".join(lines)


@app.command()
def sample(v: Optional[int] = V_OPT_OR_FILE, m: Optional[int] = M_OPT_OR_FILE, s: int = S_OPT,
           L: Optional[int] = L_OPT_OR_FILE, n_classes: Optional[int] = NC_OPT, rules: str = RULES_OPT,
           grammar_seed: Optional[int] = GRAMMAR_SEED_OPT, grammar_file: Optional[Path] = GRAMMAR_OPT,
           n: int = typer.Option(..., "--n", help="number of inputs"),
           out: Path = typer.Option(..., "--out", help="output .npz file (x, y, grammar JSON[, tree_l])"),
           seed: Optional[int] = typer.Option(None, "--seed", help="seed of the draw (default 1). It was the "
                                              "grammar's seed before: until the next release --seed is refused "
                                              "unless --grammar-seed or --grammar FILE is given too"),
           data_seed: Optional[int] = typer.Option(None, "--data-seed", help="deprecated spelling of --seed"),
           no_replace: bool = typer.Option(False, "--no-replace", help="n distinct inputs (uniform)"),
           tree: bool = typer.Option(False, "--tree", help="also store the symbols of every level"),
           zipf: Optional[float] = ZIPF_OPT, noise: float = NOISE_OPT, s0: Optional[int] = S0_OPT,
           beta: Optional[float] = BETA_OPT, filter_level: int = FILTER_OPT, m3: Optional[int] = M3_OPT,
           p2: Optional[float] = P2_OPT):
    """Draw a sample and write it to an .npz file (tokens as small unsigned ints, never one-hot; a varying-tree
    grammar's strings padded with the token v, and their lengths as `lengths`)."""

    def go():
        check_int("--n", n, 1)  # an empty sample is a mistake, not a file
        check_out_file(out, "--out", (".npz",))
        draw_seed = seed
        if seed is not None and grammar_seed is None and grammar_file is None:
            raise CliError(f"--seed {seed} is the seed of the draw now, no longer of the grammar: give "
                           f"--grammar-seed too (--grammar-seed 0 is the default grammar), or --grammar-seed {seed} "
                           "alone for the old meaning")
        if data_seed is not None:
            if seed is not None:
                raise CliError("--data-seed (deprecated) and --seed both give the draw's seed: give --seed only")
            _deprecated("sample --data-seed", "--seed")
            draw_seed = data_seed
        if m3 is None:  # the varying grammar's size is checked by its own sampler
            check_request(v, m, s, L, n_classes, s0, grammar_file, n=n, tree=tree, replace=not no_replace)
        g = _grammar(v, m, s, L, n_classes, rules, grammar_seed, grammar_file, zipf, noise, s0, beta, filter_level,
                     m3, p2)
        if not getattr(g, "varying", False):
            limits.check_sample(g, n, tree=tree, replace=not no_replace, param="--n")
        res = g.sample(n, seed=1 if draw_seed is None else draw_seed, replace=not no_replace, return_tree=tree)
        arrays = {"x": res[0], "y": res[1], "grammar": np.array(json.dumps(g.to_dict()))}
        if getattr(res, "lengths", None) is not None:
            arrays["lengths"] = res.lengths
        if tree:
            arrays.update({f"tree_{lv}": t for lv, t in enumerate(res[2][1:-1], start=1) if t is not None})
            if g.spec.noise:  # the clean tokens under the noise
                arrays[f"tree_{g.L}"] = res[2][-1]
        _atomic_savez(out, **arrays)
        typer.echo(f"wrote {n} samples (d={g.d}) to {out}", err=True)

    _run(go)
