"""How well an induced grammar matches the true one: rules recovered up to relabelling, masked-token KL."""

from __future__ import annotations

import numpy as np

from ... import inference
from ...patches import codes
from .grammar import InducedGrammar, masked_posterior


def rules_recovered(g_true, g_learned: InducedGrammar) -> dict:
    """Fraction of the true grammar's rules recovered up to relabelling of the latent symbols, per level.

    Only the rules of symbols that some derivation uses count (a symbol no rule of the level above produces,
    possible under rules="uniform", never occurs in any string: its rules cannot be learned from strings).

    Bottom-up: tokens map to themselves; a true symbol maps to the learned symbol that owns most of the images
    of its rules' child tuples. A true rule a -> t is recovered when the learned grammar has the rule
    map(a) -> map(t). At level 0 the true classes all map to the one learned root (the grouping of top-level
    tuples into classes is not identifiable). Returns {"per_level": [fraction, level 0 first], "extra_rules":
    learned rules with no true counterpart per level, "all": every rule recovered, no extra rule}.
    """
    L, s = g_true.L, g_true.s
    if g_learned.L != L or g_learned.s != s or g_learned.v != g_true.v:
        raise ValueError(f"g_learned: (v, s, L)=({g_learned.v}, {g_learned.s}, {g_learned.L}) differ from the true "
                         f"grammar's ({g_true.v}, {s}, {L})")
    # symbols some derivation uses, top-down: the rules of the others never occur in any string
    reach = [np.ones(g_true.n_classes, bool)]
    for lv in range(L):
        used = np.zeros(g_true.symbols(lv + 1), bool)
        used[np.asarray(g_true.rules[lv])[reach[lv]].ravel()] = True
        reach.append(used)
    frac, extra = [0.0] * L, [0] * L
    pi = np.arange(g_true.v)  # true level-(lv+1) symbol -> learned symbol (-1: none)
    for lv in range(L - 1, -1, -1):
        rules = np.asarray(g_true.rules[lv], dtype=np.int64)  # (k, m, s)
        k, m = rules.shape[:2]
        kc = g_learned.sizes[lv + 1]
        img = pi[rules]  # (k, m, s)
        ok = (img >= 0).all(-1)
        code = codes(np.maximum(img, 0), kc)
        owner = np.full(kc**s, -1, dtype=np.int64)
        owner[codes(g_learned.children_[lv], kc)] = g_learned.parents[lv]
        own = np.where(ok, owner[code], -1)  # (k, m) learned parent of each true rule's image
        if lv == 0:
            new = np.zeros(k, dtype=np.int64)
        else:
            votes = np.zeros((k, g_learned.sizes[lv] + 1), dtype=np.int64)
            np.add.at(votes, (np.repeat(np.arange(k), m), own.ravel() + 1), 1)
            votes[:, 0] = 0  # "no owner" is no vote
            new = np.where(votes.max(1) > 0, votes.argmax(1) - 1, -1)
        hit = (own == new[:, None]) & (new[:, None] >= 0)
        frac[lv] = float(hit[reach[lv]].mean())
        # learned rules that no true rule's image hits
        matched = np.zeros(kc**s, bool)
        matched[code[hit & reach[lv][:, None]]] = True
        extra[lv] = int((~matched[codes(g_learned.children_[lv], kc)]).sum())
        pi = new
    return {"per_level": frac, "extra_rules": extra,
            "all": bool(all(f == 1.0 for f in frac) and not any(extra))}


def masked_kl(g_true, g_learned: InducedGrammar, x, mask, eps: float = 1e-3, floor: float = 1e-12) -> float:
    """Mean over the masked positions of KL(true || learned) (nats) of the masked-token posteriors given the
    unmasked tokens of x (strings of the true grammar; mask (n, d) bool). The learned posterior is what the
    `induce` learner predicts (masked_posterior with its smoothing eps); it is floored at `floor`."""
    x, mask = np.asarray(x), np.asarray(mask, dtype=bool)
    if mask.shape != x.shape or not mask.any():
        raise ValueError(f"mask must be a boolean array of x's shape {x.shape} with at least one True")
    p = inference.token_posterior(g_true, x, mask)[mask]
    q = masked_posterior(g_learned, x, mask, eps)[mask]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(np.maximum(q, floor))), 0.0)
    return float(terms.sum(-1).mean())
