"""The fit as a search: bottom-up passes, restarts, and the re-fits of a best state that was not confirmed.

One fit (`descend`) runs the bottom-up passes (statistics -> k-means -> structure search, level by level), the
top model and the top-down refinement. The restart search keeps the best `FitState` by its score (the joint
likelihood of the hard-decoded grammar when the grammar predicts, else the training label likelihood) and stops
once `confirm` restarts reached it. Unless the best was confirmed, `remeasure` then redoes the whole fit from
context statistics measured on its refined symbols, round after round (an outer EM loop over the statistics),
each round kept where the score rises.
"""

from __future__ import annotations

import numpy as np

from ...patches import patch_ids
from .network import FitState
from .refine import refine
from .statistics import Blocks, cluster, n_clusters, statistics
from .structure import SiblingStructure, is_sparse


def compare(score: float, best: float) -> int:
    """1 if score beats best, 0 if it ties (relative tolerance 1e-9), -1 if below."""
    tol = 1e-9 * abs(best)
    return 1 if score > best + tol else 0 if score >= best - tol else -1


def bottom_up(est, state: FitState, tokens, y, prev, prev_vocab, rng, search=0) -> dict:
    """One bottom-up pass from `tokens` {start: (n, s^start)}, the training symbols at level `start` (the input,
    start = L, or the current maps' symbols, whose levels below `start` are kept). Returns tokens[l] (n, s^l)
    for l = start..1.

    `prev` holds a previous pass's tokens (the sibling context is then measured on its symbols, alphabet sizes
    `prev_vocab`), or None (the sibling is its raw patch). The structure search runs on levels 2..`search`."""
    s, L = state.s, state.L
    (start,) = tokens
    state.codes = {lv: c for lv, c in state.codes.items() if lv > start} if start < L else {}
    state.maps = {lv: c for lv, c in state.maps.items() if lv > start} if start < L else {}
    state.vocab = {lv: k for lv, k in state.vocab.items() if lv >= start} if start < L else {L: est.v_}
    cfg = Blocks(s, est.n_classes_, est.prior, est.all_patches, est.context)
    for level in range(start, 1, -1):
        T, k = tokens[level], state.vocab[level]
        n, width = T.shape
        P = width // s  # patches at this level = tokens at level-1
        uniq, inv = patch_ids(T.reshape(n, P, s), k)  # inv (n, P)
        U = len(uniq)
        rows = est.stage_rows_[level]
        sib = inv if prev is None else prev[level - 1]
        K = U if prev is None else prev_vocab[level - 1]
        labelled = est.label_context and prev is not None  # siblings are symbols: (sibling, label) blocks
        feats = statistics(cfg, inv, sib, K, y, rows, U, labelled)
        F = np.concatenate(feats, axis=1)  # (U, features)
        weight = np.bincount(inv[rows].ravel(), minlength=U).astype(np.float64)
        if est.quantize:
            k_next = n_clusters(F[weight > 0], U, est.n_symbols, est.v_)
            sym = cluster(F, weight, k_next, est.n_init, rng)
            parent = y[rows] if level == 2 else None  # level-2 groups are the top tuples
            if level <= search and P >= s:
                if is_sparse(inv[rows], sym, k_next, U, k, s, est.n_classes_, parent):
                    sym = _structure(est, inv[rows], s, k_next, U, parent, sym, rng)
                elif level > 2 and est.class_structure:  # dense level: the tuples given (class, group position)
                    parent = (y[rows][:, None] * (P // s) + np.arange(P // s)).ravel()
                    sym = _structure(est, inv[rows], s, k_next, U, parent, sym, rng)
        else:
            sym, k_next = np.arange(U), U
        state.codes[level], state.maps[level], state.vocab[level - 1] = uniq, sym, k_next
        tokens[level - 1] = sym[inv]
    return tokens


def _structure(est, inv, s, k, U, parent, sym, rng):
    """The structure search of one level from the k-means map sym, with the estimator's budgets."""
    return SiblingStructure(inv, s, k, U, parent).search(sym, rng, chains=est.structure_chains,
                                                         sweeps=est.structure_sweeps, blocks=est.structure_blocks)


def descend(est, state: FitState, x, y, tokens, rng, restart, joint, prev=None) -> FitState:
    """One fit from `tokens` {start: symbols} up: the bottom-up passes, the top, then the refinement; sets the
    state's score (joint: log P(x, y) of its hard-decoded grammar; else the label log-likelihood), loglik and
    sweeps. With `prev` (the symbols of every level of `state`, e.g. of a refined fit) the first pass is
    already a context pass measured on them."""
    L = state.L
    passes = 1 + (est.context_passes if est.context else 0)
    prev_vocab = dict(state.vocab)
    for i in range(0 if prev is None or passes == 1 else 1, passes):
        search = L if est.structure and i == passes - 1 else 0  # the structure search: last pass only
        prev = bottom_up(est, state, dict(tokens), y, prev, prev_vocab, rng, search=search)
        prev_vocab = dict(state.vocab)
    state.fit_top(prev[1], y, est.stage_rows_[1])
    state.sweeps = refine(state, x, y, est.stage_rows_[1], est.refine_sweeps) if est.refine else 0
    state.loglik = float(state.top_logprob(state.symbols(x)[1], y).sum())
    state.score = state.hard_joint_loglik(x, y) if joint else state.loglik
    state.restart = restart
    return state


def restart_search(est, x, y, rng, joint) -> tuple[FitState, dict]:
    """Restarts until one best is reached `confirm` times (or `restarts`), then the re-fits; (best, info)."""
    L, best, hits = est.L_, None, 0
    for restart in range(est.restarts):
        state = descend(est, est._empty_state(), x, y, {L: x.astype(np.int64)}, rng, restart, joint)
        if best is None or compare(state.score, best.score) > 0:
            best, hits = state.copy(), 1
        elif compare(state.score, best.score) == 0:
            hits += 1  # another restart reached the best score
        if hits >= est.confirm:
            break  # the best has been found `confirm` times: most likely the optimum
    restart_best, confirmed = best.score, hits >= est.confirm
    rounds = est.remeasure_rounds if est.remeasure and not confirmed else 0
    best, remeasured = remeasure(est, best, rounds, x, y, rng, joint)
    info = {"train_loglik": best.loglik, "restart_criterion": "joint" if joint else "label",
            "restart_score": best.score, "chosen_restart": best.restart, "refine_sweeps": best.sweeps,
            "restarts_confirmed": confirmed, "remeasure_rounds": remeasured,
            "remeasure_score_gain": best.score - restart_best}
    return best, info


def remeasure(est, best: FitState, rounds, x, y, rng, joint) -> tuple[FitState, int]:
    """Up to `rounds` re-fits of the whole fit from context statistics measured on the symbols of `best`, each
    kept if it raises the score with the same symbol counts; stops at a fixed point (a re-fit that reaches the
    best score again). (best, rounds run)."""
    L, done = est.L_, 0
    for done in range(1, rounds + 1):
        state = best.copy()
        cand = descend(est, state, x, y, {L: x.astype(np.int64)}, rng, best.restart, joint, prev=state.symbols(x))
        if cand.vocab != best.vocab:
            continue  # n_symbols="auto" chose other symbol counts: likelihoods not comparable
        if compare(cand.score, best.score) > 0:
            best = cand.copy()
        elif compare(cand.score, best.score) == 0:
            break
    return best, done
