"""Task execution: one run configuration -> one JSON-able result. What every executor calls, and what
``rhm train`` calls too (:func:`train_once`), so a command-line run and a sweep run of the same configuration
give the same numbers.

Tasks: ``train`` (fit a learner on P training inputs, score on a disjoint test set, optionally measure synonymic
sensitivities), ``parse`` (exact counts, label determinism, parse recovery: R1), ``gaps`` (exact signal gaps
rho^(l): R2), ``boolean`` (samples to a relative test MSE on a deep quadratic boolean function: R8) and
``diffusion`` (DM1-DM3: exact forward-backward statistics on a grid of noise levels, or a diffusion learner's
generated data).
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..validation import check_bool, check_choice, check_int
from .config import SAMPLING, TASKS, RunConfig, jsonable


def _row_ids(x: np.ndarray) -> np.ndarray:
    """One opaque id per row of an integer token array (for set membership without a Python loop)."""
    x = np.ascontiguousarray(x.astype(np.int64, copy=False))
    return x.view(np.dtype((np.void, x.dtype.itemsize * x.shape[1]))).reshape(-1)


def train_test_split(g, train_size: int, test_size: int, seed: int, sampling: str = "distinct"):
    """(x_train, y_train, x_test, y_test) drawn from grammar g with one seed.

    sampling="distinct": P + T distinct inputs, the first P to train (the literature's P* protocol; needs
    P + T <= P_max). sampling="iid": P i.i.d. training inputs (repeats allowed, so P may exceed P_max) and T
    distinct test inputs drawn uniformly from those not in the training set.

    A Zipf or noisy grammar has no uniform distinct-input protocol: it needs sampling="iid", and then its test
    set is T fresh i.i.d. draws too (the population error; they may repeat or meet training inputs).
    """
    check_choice("sampling", sampling, SAMPLING)
    P = check_int("train_size", train_size, 1)
    T = check_int("test_size", test_size, 1)
    if not g.spec.is_plain:
        if sampling != "iid":
            raise ValueError(f"sampling={sampling!r} draws distinct inputs uniformly, which is not the distribution "
                             f"of {g!r}: use sampling='iid' for Zipf or noisy grammars")
        train_seed, test_seed = np.random.SeedSequence(seed).spawn(2)
        x, y = g.sample(P, seed=train_seed)
        xt, yt = g.sample(T, seed=test_seed)
        return x, y, xt, yt
    if sampling == "distinct":
        if P + T > g.num_inputs:
            raise ValueError(f"train_size + test_size = {P + T} exceeds the {g.num_inputs} distinct inputs of "
                             "this grammar (sampling='distinct')")
        x, y = g.sample(P + T, seed=seed, replace=False)
        return x[:P], y[:P], x[P:], y[P:]
    train_seed, test_seed = np.random.SeedSequence(seed).spawn(2)
    x, y = g.sample(P, seed=train_seed, replace=True)
    seen = np.unique(_row_ids(x))
    if T > g.num_inputs - len(seen):
        raise ValueError(f"test_size={T} exceeds the {g.num_inputs - len(seen)} inputs not in the training set "
                         "(sampling='iid')")
    # a uniform ordering of all distinct inputs restricted to the unseen ones is uniform over the unseen ones
    xt, yt = g.sample(min(g.num_inputs, T + len(seen)), seed=test_seed, replace=False)
    keep = ~np.isin(_row_ids(xt), seen)
    return x, y, xt[keep][:T], yt[keep][:T]


def train_once(g, learner: str, params: dict, train_size: int, test_size: int, seed: int,
               sampling: str = "distinct", objective: str = "classify", mask_rate: float = 0.15,
               online: bool = False, train_mask_rate=None, mask_draws: int = 1):
    """Fit learner `learner` (registry name, constructor kwargs `params`) on a draw of g and score it.

    `objective` is the task of :mod:`rhm.lm_tasks` (classify, next-token, next-token-all, masked): the same
    input draw, turned into that task's inputs and targets (masks drawn from `seed`). Returns (model, result)
    with result = {"test_accuracy", "test_error", "fit_seconds", "n_distinct_train", "info"} and, for the
    language-model tasks, "lm": the test metrics against the Bayes predictor (lm_tasks.evaluate); info is the
    model's ``info_`` as recorded (Python keys; JSON-ify with ``config.jsonable``).

    online=True (torch learners): the model trains on an :class:`rhm.data.RHMStream` of ceil(P / batch_size)
    fresh batches (P i.i.d. samples seen once, never stored; ``fit_stream``) and is tested on T fresh i.i.d.
    draws (the population error; `sampling` does not apply).

    train_mask_rate (masked task; None: `mask_rate`): the rate the *training* masks are drawn at (the stream's
    online; offline, the training targets', which the fit's re-masking keeps), the test masks staying at
    `mask_rate`. Masks are drawn independently of the string, so the Bayes predictor of a hidden token given the
    visible ones is the same at every rate: a higher training rate aims at the same predictor with more targets per
    sample (Wettig et al., "Should You Mask 15% in Masked Language Modeling?", EACL 2023: more predictions help
    optimisation). Measured in docs/lm_tasks.md (issue 24's MLM target).

    mask_draws (masked task, online): each fresh training string is shown with K = mask_draws independently drawn
    masks in its step (K·B rows, B samples seen): more targets from the same samples, none of them a hidden token
    another copy sees. An offline fit already re-draws every string's mask each epoch, so it refuses K > 1.
    """
    from .. import learners, lm_tasks

    lm_tasks.check_task(objective)
    if train_mask_rate is None:
        train_mask_rate = mask_rate
    elif objective != "masked":
        raise ValueError(f"train_mask_rate={train_mask_rate!r} applies to the masked task only, not "
                         f"objective={objective!r}")
    else:
        lm_tasks.check_mask_rate(train_mask_rate, "train_mask_rate")
    check_int("mask_draws", mask_draws, 1)
    if mask_draws > 1 and (objective != "masked" or not online):
        raise ValueError(f"mask_draws={mask_draws} applies to the masked task trained online only (an offline fit "
                         "re-draws each string's mask every epoch), not objective="
                         f"{objective!r} with online={online!r}")
    cls = learners.get(learner)
    if objective not in cls.tasks:
        raise lm_tasks.unsupported(learner, objective, cls.tasks)
    check_choice("sampling", sampling, SAMPLING)  # checked even where it does not apply (online)
    if check_bool("online", online):
        return _train_online(g, cls, params, train_size, test_size, seed, objective, mask_rate, train_mask_rate,
                             mask_draws)
    xtr, ytr, xte, yte = train_test_split(g, train_size, test_size, seed, sampling)
    n_distinct = int(len(np.unique(_row_ids(xtr))))
    te = None  # the test TaskData of a language-model task
    if objective != "classify":
        mask_tr, mask_te = np.random.SeedSequence([seed, 17]).spawn(2)
        tr = lm_tasks.make(g, objective, xtr, ytr, mask_rate=train_mask_rate, seed=np.random.default_rng(mask_tr))
        te = lm_tasks.make(g, objective, xte, yte, mask_rate=mask_rate, seed=np.random.default_rng(mask_te))
        xtr, ytr, xte, yte = tr.x, tr.y, te.x, te.y
    model = make_learner(cls, params)
    t0 = time.perf_counter()
    model.fit(xtr, ytr, grammar=g, task=objective)
    fit_seconds = time.perf_counter() - t0
    return model, _scored(g, model, objective, xte, yte, te, fit_seconds, n_distinct)


def make_learner(cls, params: dict):
    """cls(**params), where the keys of a torch learner's class-level fit options (``_torch.FIT_OPTIONS``: remask,
    lm_val_fraction, lm_val_patience, warmup, val_patience) that are not constructor arguments are set on the
    instance after construction, so that a sweep or a protocol can set them on any torch learner."""
    import inspect

    accepted = inspect.signature(cls.__init__).parameters
    options = {k: v for k, v in params.items() if k in cls.FIT_OPTIONS and k not in accepted}
    model = cls(**{k: v for k, v in params.items() if k not in options})
    for k, v in options.items():
        setattr(model, k, v)
    return model


def _train_online(g, cls, params, train_size, test_size, seed, objective, mask_rate, train_mask_rate, mask_draws):
    """train_once(online=True): fit_stream on ceil(P / B) fresh batches, test on T fresh i.i.d. draws."""
    from .. import learners, lm_tasks
    from ..data import RHMStream

    learners.check_online(cls.name)
    P, T = check_int("train_size", train_size, 1), check_int("test_size", test_size, 1)
    model = make_learner(cls, params)
    B = min(check_int("batch_size", model.batch_size, 1), P)
    stream = RHMStream(g, B, seed=seed, n_batches=math.ceil(P / B), task=objective, mask_rate=train_mask_rate,
                      mask_draws=mask_draws)
    te = lm_tasks.sample(g, objective, T, seed=np.random.default_rng([seed, 29]), mask_rate=mask_rate)
    t0 = time.perf_counter()
    model.fit_stream(stream)
    fit_seconds = time.perf_counter() - t0
    return model, _scored(g, model, objective, te.x, te.y, te, fit_seconds, None)


def _scored(g, model, objective, xte, yte, te, fit_seconds, n_distinct) -> dict:
    """train_once's result for a fitted model: its test accuracy on (xte, yte) and, for a language-model task
    (`te` its TaskData), the metrics against the Bayes predictor; for a noisy grammar, the Bayes error."""
    from .. import lm_tasks

    acc = float(model.score(xte, yte))
    out = {"test_accuracy": acc, "test_error": 1 - acc, "fit_seconds": fit_seconds,
           "n_distinct_train": n_distinct, "info": dict(getattr(model, "info_", {}) or {})}
    if objective != "classify":
        out["lm"] = lm_tasks.evaluate(g, te, model.predict_proba(xte))
    elif (g.spec.beta is not None or g.spec.filter_level) and hasattr(model, "predict_proba"):
        # soft and filtered grammars: the class posterior is not one-hot, so the classifier's cross-entropy and its
        # excess over exact belief propagation on the same test inputs are recorded too (FG1)
        out["lm"] = lm_tasks.evaluate(g, lm_tasks.make(g, "classify", xte, yte), model.predict_proba(xte))
    if objective == "classify" and g.spec.noise > 0:
        out.update(bayes_test_error(g, xte, yte))
    out.update(learned_grammar_metrics(g, model))
    return out


def learned_grammar_metrics(g, model) -> dict:
    """For a learner that exposes the grammar it learned (``grammar_`` an InducedGrammar, e.g. ``induce``; other
    learners keep the true grammar there, or nothing): {"rules_recovered": per level, level 0 first,
    "extra_rules": per level, "all_rules_recovered": bool} from rhm.learners.induce.rules_recovered; else {}."""
    h = getattr(model, "grammar_", None)
    if h is None or h is g:
        return {}
    from ..learners.induce import InducedGrammar, rules_recovered

    if not isinstance(h, InducedGrammar):
        return {}
    rec = rules_recovered(g, h)
    return {"rules_recovered": [float(f) for f in rec["per_level"]],
            "extra_rules": [int(e) for e in rec["extra_rules"]], "all_rules_recovered": bool(rec["all"])}


def bayes_test_error(g, x, y) -> dict:
    """The Bayes classifier on the test set of a noisy grammar (exact posteriors, rhm.inference):
    {"bayes_test_error": its 0/1 error on (x, y) (paired with the learner's error on the same inputs),
    "bayes_error_expected": the mean of 1 - max_c P(c | x) over x (the same in expectation, lower variance)}."""
    from .. import inference

    post = inference.class_posterior(g, x)
    return {"bayes_test_error": float((post.argmax(1) != y).mean()),
            "bayes_error_expected": float((1 - post.max(1)).mean())}


# --------------------------------------------------------------------------------------------- execution
def execute(config: dict) -> dict:
    """Run one configuration (a RunConfig dict) and return its result (JSON-able).

    Result: {"test_accuracy", "test_error", "fit_seconds", "wall_seconds", "metrics": {...}, "info": {...}}.
    """
    cfg = RunConfig.from_dict(config)
    t0 = time.perf_counter()
    runners = {"train": _execute_train, "parse": _execute_parse, "gaps": _execute_gaps,
               "boolean": _execute_boolean, "diffusion": _execute_diffusion, "ambiguity": _execute_ambiguity}
    check_choice("task", cfg.task, TASKS)
    out = runners[cfg.task](cfg)
    out["wall_seconds"] = time.perf_counter() - t0
    return jsonable(out)


def _execute_train(cfg: RunConfig) -> dict:
    g = cfg.spec.build()
    model, res = train_once(g, cfg.learner, cfg.params, cfg.train_size, cfg.test_size, cfg.seed, cfg.sampling,
                            cfg.objective, _mask_rate(cfg.extras.get("mask_rate", 0.15)),
                            online=bool(cfg.extras.get("online", False)),
                            train_mask_rate=_mask_rate(cfg.extras.get("train_mask_rate")),
                            mask_draws=cfg.extras.get("mask_draws", 1))
    metrics = {"chance_error": 1 - 1 / g.n_classes, "nc_m_L": cfg.spec.nc_m_L}
    for key in ("bayes_test_error", "bayes_error_expected"):  # noisy grammars: the Bayes reference of this test set
        if key in res:
            metrics[key] = res[key]
    if "lm" in res:  # accuracy, cross-entropy, the Bayes predictor's and the excess (rhm.lm_tasks)
        metrics.update({"objective": cfg.objective, **res["lm"]})
    for key in ("rules_recovered", "extra_rules", "all_rules_recovered"):  # a learner that learned a grammar
        if key in res:
            metrics[key] = res[key]
    if cfg.sampling != "distinct" and res["n_distinct_train"] is not None:
        metrics["n_distinct_train"] = res["n_distinct_train"]
    levels = cfg.extras.get("sensitivity_levels")
    if levels == "all":  # every level whose synonyms can be exchanged: 0 (root) .. L-1
        levels = list(range(g.L))
    if levels:
        metrics["sensitivity"] = _sensitivities(model, g, levels, int(cfg.extras.get("sensitivity_n", 512)),
                                                cfg.seed)
    return {"test_accuracy": res["test_accuracy"], "test_error": res["test_error"],
            "fit_seconds": res["fit_seconds"], "metrics": metrics, "info": res["info"]}


def _mask_rate(value):
    """extras.mask_rate / train_mask_rate: a probability, "one" (one hidden token per row), or None (not set)."""
    from ..lm_tasks import ONE_PER_ROW

    return value if value is None or value == ONE_PER_ROW else float(value)


def _sensitivities(model, g, levels, n, seed) -> dict:
    """{level: per-layer synonymic sensitivities} from rhm.sensitivity (a learner without hidden layers:
    recorded as missing)."""
    from ..sensitivity import sensitivity

    out = {}
    for lv in levels:
        try:
            res = sensitivity(model, g, int(lv), n, seed)
        except ValueError as err:  # e.g. a learner without hidden layers (kmeans, kernel)
            return {"missing": str(err)}
        if hasattr(res, "tolist"):
            res = res.tolist()
        elif isinstance(res, dict):
            res = {str(k): (v.tolist() if hasattr(v, "tolist") else v) for k, v in res.items()}
        elif isinstance(res, (list, tuple)):
            res = [float(r) for r in res]
        out[str(lv)] = res
    return out


def _execute_parse(cfg: RunConfig) -> dict:
    """R1: exact input count, label determinism and parse recovery."""
    g = cfg.spec.build()
    total = g.num_inputs
    n = int(cfg.extras.get("parse_n", 20000))
    enum_max = int(cfg.extras.get("enumerate_max", 200000))
    metrics = {"num_inputs_formula": str(total), "num_inputs_float": float(total), "d": g.d,
               "v_pow_d": float(g.v) ** g.d}
    if total <= enum_max:
        x, y = g.sample(total, seed=cfg.seed, replace=False)
        distinct = len(np.unique(x, axis=0))
        metrics["enumerated_distinct"] = int(distinct)
        metrics["count_matches"] = bool(distinct == total)
        # every valid string: an i.i.d. uniform random string is valid with probability P_max / v^d
        rng = np.random.default_rng(cfg.seed)
        rnd = rng.integers(0, g.v, size=(min(n, 50000), g.d))
        metrics["random_valid_fraction"] = float((g.parse(rnd) >= 0).mean())
        metrics["random_valid_expected"] = float(total) / float(g.v) ** g.d
    else:
        x, y = g.sample(n, seed=cfg.seed, replace=False)
        metrics["enumerated_distinct"] = None
        metrics["count_matches"] = None
    recovered = g.parse(x) == y
    metrics["parse_n"] = int(len(x))
    metrics["parse_recovery"] = float(recovered.mean())
    # label determinism: an i.i.d. sample (with repeats) never shows one input with two labels
    xi, yi = g.sample(n, seed=cfg.seed + 1)
    uniq, inv = np.unique(xi, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    lab_min = np.full(len(uniq), np.iinfo(np.int64).max)
    lab_max = np.full(len(uniq), -1)
    np.minimum.at(lab_min, inv, yi.astype(np.int64))
    np.maximum.at(lab_max, inv, yi.astype(np.int64))
    metrics["iid_n"] = int(n)
    metrics["iid_distinct"] = int(len(uniq))
    metrics["conflicting_labels"] = int((lab_min != lab_max).sum())
    return {"test_accuracy": None, "test_error": None, "fit_seconds": None, "metrics": metrics, "info": {}}


def _execute_gaps(cfg: RunConfig) -> dict:
    """R2: exact signal gaps rho^(l) (oracle) against m^(-l/2)."""
    from .. import oracle

    g = cfg.spec.build()
    gaps = oracle.signal_gaps(g)
    rho = {str(k): (float(v) if math.isfinite(v) else None) for k, v in gaps.rho.items()}
    ref = {str(k): g.m ** (-k / 2) for k in gaps.rho}
    metrics = {"rho": rho, "m_pow_minus_l_half": ref,
               "kappa": float(gaps.kappa) if math.isfinite(gaps.kappa) else None,
               "K_rho": float(gaps.K_rho(g.m)) if math.isfinite(gaps.K_rho(g.m)) else None}
    return {"test_accuracy": None, "test_error": None, "fit_seconds": None, "metrics": metrics, "info": {}}


def _execute_boolean(cfg: RunConfig) -> dict:
    """R8: samples a learner needs on a deep quadratic boolean function (rhm.boolean.samples_needed).

    extras: {"learner": "layerwise" | "shallow" | "mlp", "d": int, "levels": int, "threshold": float,
    "params": {learner kwargs, e.g. {"refit": false}}}."""
    from .. import boolean

    e = cfg.extras
    res = boolean.samples_needed(e["learner"], int(e["d"]), levels=int(e.get("levels", 2)),
                                 threshold=float(e.get("threshold", 1e-3)), seed=cfg.seed,
                                 n_max=int(e.get("n_max", 50_000)), test_size=int(e.get("test_size", 2000)),
                                 **dict(e.get("params", {})))
    return {"test_accuracy": None, "test_error": None, "fit_seconds": res.get("seconds"), "metrics": res,
            "info": {}}


def _execute_ambiguity(cfg: RunConfig) -> dict:
    """FG3 (rhm.experiments.exp_varying): extras["n_strings"] strings of a VaryingRHM (seed cfg.seed), each parsed
    exactly (rhm.inference.cky): metrics "mean_log_parses" (E log N(x), N the number of parse trees),
    "mean_length", "p_ambiguous" (P(N > 1)), "p_root_undetermined" (P(more than one root class derives x));
    one counting pass per string."""
    from ..inference import cky

    g = cfg.spec.build()
    if cfg.spec.kind != "varying":
        raise ValueError(f"task='ambiguity' needs a varying-tree grammar (m3 >= 1), got {cfg.spec.label}")
    n = check_int("n_strings", int(cfg.extras.get("n_strings", 200)), 1)
    s = g.sample(n, seed=cfg.seed)
    log_counts, _ = cky.inside_root(g, s.x, count=True)  # log #parses per root class; -inf: none from that class
    top = log_counts.max(1)
    log_n = top + np.log(np.exp(log_counts - top[:, None]).sum(1))
    metrics = {"mean_log_parses": float(log_n.mean()), "mean_length": float(s.lengths.mean()),
               "p_ambiguous": float((log_n > math.log(1.5)).mean()),
               "p_root_undetermined": float((np.isfinite(log_counts).sum(1) > 1).mean()), "n_strings": n}
    return {"test_accuracy": None, "test_error": None, "fit_seconds": None, "metrics": metrics, "info": {}}


def _execute_diffusion(cfg: RunConfig) -> dict:
    """DM1-DM3 (rhm.experiments.exp_diffusion). extras["what"]:

    "forward_backward": n_strings clean strings (seed), each noised at every level of extras["ts"] by
    extras["process"] and sampled back exactly (rhm.diffusion.forward_backward, one call: t per string); per t,
    metrics["class_change"], metrics["fraction"] (per level 0..L), metrics["rate"] (tokens changed),
    metrics["chi"] (Var(number of changed tokens)/d, rhm.diffusion.token_correlations) and metrics["chunk"]
    = chi / (rate (1 - rate)): the mean size of a correlated chunk of changes (1 for independent changes).

    "learn": fit the learner (cfg.learner, cfg.params) on cfg.train_size i.i.d. strings, draw extras["n_gen"]
    strings; metrics["validity"][l] (rhm.oracle.validity, l = 1..L) for them and for as many uniform random
    strings ("random_validity"), the same per level-l patch ("patch_validity", "random_patch_validity"),
    "memorised" (generated strings found in the training set), "novel_validity" / "novel_patch_validity" (the
    same on the generated strings that are not training strings: what the model generalises rather than recalls;
    None where every generated string is memorised; "n_novel" of them), "excess_nll": the
    model's ELBO bound on -log p(x)/d on fresh strings minus the grammar's exact -log p(x)/d on them (nats/token).
    """
    from .. import diffusion, learners, oracle
    from ..inference import log_likelihood

    g = cfg.spec.build()
    e = cfg.extras
    what = check_choice("what", e.get("what"), ("forward_backward", "learn"))
    if what == "forward_backward":
        ts = [float(t) for t in e["ts"]]
        n = check_int("n_strings", int(e.get("n_strings", 400)), 1)
        x, _, tree = g.sample(n, seed=cfg.seed, return_tree=True)
        rep = np.repeat(np.arange(n)[None, :], len(ts), 0).ravel()  # t-major: group k is rows k*n .. (k+1)*n
        t_rows = np.repeat(np.asarray(ts), n)
        big = [np.asarray(lv)[rep] for lv in tree]
        _, new_tree = diffusion.forward_backward(g, big[-1], t_rows, e.get("process", "mask"), seed=cfg.seed + 1,
                                                 return_tree=True)
        ch = diffusion.changes(big, new_tree)  # per level (N, 1, S**l)
        metrics = {"t": ts, "class_change": [], "fraction": [], "rate": [], "chi": [], "chunk": []}
        for k in range(len(ts)):
            sl = slice(k * n, (k + 1) * n)
            metrics["class_change"].append(float(ch[0][sl].mean()))
            metrics["fraction"].append([float(c[sl].mean()) for c in ch])
            tc = diffusion.token_correlations(big[-1][sl], new_tree[-1][sl])
            metrics["rate"].append(tc.rate)
            metrics["chi"].append(tc.susceptibility)
            var = tc.rate * (1 - tc.rate)
            metrics["chunk"].append(tc.susceptibility / var if var > 1e-12 else None)
        return {"test_accuracy": None, "test_error": None, "fit_seconds": None, "metrics": metrics, "info": {}}
    P = check_int("train_size", cfg.train_size, 1)
    n_gen = check_int("n_gen", int(e.get("n_gen", 1000)), 1)
    s_train, s_test, s_rand = np.random.SeedSequence([cfg.seed, 41]).spawn(3)
    x, _ = g.sample(P, seed=s_train)
    model = learners.get(cfg.learner)(**cfg.params)
    t0 = time.perf_counter()
    model.fit(x, grammar=g)
    fit_seconds = time.perf_counter() - t0
    gen = model.sample(n_gen, seed=cfg.seed)
    rnd = np.random.default_rng(s_rand).integers(0, g.v, size=(n_gen, g.d))
    xt, _ = g.sample(min(n_gen, 1000), seed=s_test)
    excess = float(model.nll_bound(xt, n_draws=4, seed=cfg.seed).mean() + log_likelihood(g, xt).mean() / g.d)
    val, val_rnd = oracle.validity(g, gen), oracle.validity(g, rnd)
    memorised = np.isin(_row_ids(gen), _row_ids(x))
    novel = oracle.validity(g, gen[~memorised]) if (~memorised).any() else None
    metrics = {"validity": {str(k): float(v) for k, v in val.strings.items()},
               "random_validity": {str(k): float(v) for k, v in val_rnd.strings.items()},
               "patch_validity": {str(k): float(v) for k, v in val.patches.items()},
               "random_patch_validity": {str(k): float(v) for k, v in val_rnd.patches.items()},
               "novel_validity": None if novel is None else {str(k): float(v) for k, v in novel.strings.items()},
               "novel_patch_validity": None if novel is None else {str(k): float(v) for k, v in novel.patches.items()},
               "memorised": float(memorised.mean()), "n_novel": int((~memorised).sum()), "excess_nll": excess,
               "n_gen": n_gen}
    return {"test_accuracy": None, "test_error": None, "fit_seconds": fit_seconds, "metrics": metrics,
            "info": dict(getattr(model, "info_", {}) or {})}
