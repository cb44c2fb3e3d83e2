"""Moment-based layerwise learner for the varying-topology RHM (Parley, Cagnetta & Wyart, arXiv 2602.06065).

What the paper says, and what we could read of it
-------------------------------------------------
The paper's abstract and the public summaries of it (arXiv abs page, sciencestack, tomesphere; December 2026)
state: a *moment-based inference algorithm*, "inspired by the structure of deep convolutional networks", learns
the grammar level by level from **root-to-pair and root-to-triple covariances** (the correlation of the root label
with adjacent pairs and triples of symbols), whose clustering identifies synonyms (the right-hand sides of one
symbol); its sample complexity is ``P* = O((p2**2 / 2)**(1 - L) * v * m3 * m2**(L - 1))`` (``theory_p_star``).
The body of the paper (its learning section, the algorithm's exact steps, equation numbers) was **not readable**
in the stored copies available to us, and the authors' code (jackparley/Mixed_RHM) holds the networks and
fixed-topology one-step experiments, not this algorithm. The steps below are therefore our reconstruction from
those statements, written so that every statistic used is a root-to-tuple moment or a tuple count; where we had
to choose, the choice is named (*ours*).

The algorithm (bottom-up; level 0 = the tokens, level L = the root)
-------------------------------------------------------------------
Inputs are strings padded on the right with a pad token to ``3**L`` (rhm.VaryingRHM's format; a plain RHM with
s = 2 or 3 is the special case of one arity and no padding). A *chart* holds, for every sample, start position i,
span length l and symbol a, the number of ways the learned rules derive span [i, i+l) from a at the current level
(level 0: the one-hot tokens; spans at level k have lengths 2**k .. 3**k, uniform depth).

For each level k = 1 .. L-1:

1. **Edge moments.** Every level's leftmost constituent starts at position 0 and its rightmost one ends at the
   string's end, whatever the topology, so the adjacent pairs and triples of level-(k-1) constituents at the two
   edges are the candidates whose alignment is known (*ours*: the paper's summary names root-to-pair/triple
   covariances, not where they are taken; the existing `kmeans` learner also uses the first patch). From the
   chart of the strings and of the strings reversed we count ``N2[(a, b), y]`` and ``N3[(a, b, c), y]`` at each
   edge: occurrences of the tuple in training strings of class y (vectorised: outer products of chart slices,
   one matrix product with the one-hot labels).
2. **Which tuples are rules** (*ours*). At the left edge, x[0:2] is a binary rule or the first two symbols of
   a ternary one, x[0:3] a ternary rule or a binary rule plus the next constituent's first symbol; both kinds
   carry their parent's root covariance, so the covariance cannot tell them apart, and when binary and ternary
   rules overlap (rhm.VaryingRHM draws them independently) neither can the continuations. The two edges can: a
   rule occurs at both, a left-edge artefact is rarely a right-edge one. A tuple's score is min(left count,
   right count) (for pairs, net of the occurrences explained by the ternary rules found, as prefix on the left
   and suffix on the right); it is a rule when the score reaches ``min_count`` and ``rule_share`` times the
   count-weighted mean score of its arity. Fixed-length data (a plain RHM) keeps only its one arity.
3. **Clustering by root covariance.** Each rule t gets the vector ``N[t, :] / N[t].sum() - prior`` at each edge
   (its empirical root-class distribution minus the class prior: the root-to-tuple covariance divided by the
   tuple's frequency), the two concatenated; pairs and triples together are clustered into v groups by k-means
   weighted by the score (`weighted_kmeans`). A
   cluster is a learned level-k symbol; its members are its learned rules (synonyms: the binary and ternary
   right-hand sides of one symbol share the root covariance).
4. **Coarse-graining.** The learned rules build the level-k chart from the level-(k-1) one (all segmentations:
   pairs and triples of adjacent spans, lengths adding up), so a string's parse need not be known, only derivable.

Level L (the root): the class table ``T[t, y]`` counts the pairs and triples of level-(L-1) symbols that span the
whole string in training strings of class y; ``predict`` sums, over every derivation of the whole string, the
table's class frequencies of its top tuple, and returns the arg-max (the class prior's arg-max when no derivation
exists, e.g. a string built from a rule never found at the edges).

Limits: a rule whose parent rarely sits at an edge is found late (the score is the smaller edge count); on a
plain RHM the learner runs (one arity) but the fixed-topology learners (kmeans, chaining) use every position.

Scope: strings whose every leaf sits at depth L with nodes of arity 2 or 3 (rhm.VaryingRHM; a plain RHM with
s = 2 or 3). Ambiguous grammars are accepted: a span derivable in several ways keeps every derivation in the chart.
The learner reads tokens and labels only; the grammar, when passed to fit, gives L and the pad token.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np

from .. import limits
from ..validation import check_float, check_int
from . import register
from .base import Learner, check_seed

# samples per chunk in the chart and moment products (bounds the (chunk, positions, rules) temporaries)
_CHUNK = 4096


def theory_p_star(v: int, m2: int, m3: int, p2: float, L: int) -> float:
    """The paper's sample-complexity scale ``(p2**2 / 2)**(1 - L) * v * m3 * m2**(L - 1)`` (abstract; O(.), so
    up to a constant)."""
    check_int("v", v, 1)
    check_int("m2", m2, 1)
    check_int("m3", m3, 1)
    check_int("L", L, 1)
    p2 = check_float("p2", p2, 0.0, strict=True)
    if p2 > 1:
        raise ValueError(f"p2={p2!r} must be in (0, 1]")
    return float((p2**2 / 2) ** (1 - L) * v * m3 * m2 ** (L - 1))


def _reverse(x: np.ndarray, lengths: np.ndarray, pad: int | None) -> np.ndarray:
    """Each string reversed within its length, still padded on the right."""
    idx = lengths[:, None] - 1 - np.arange(x.shape[1])[None, :]
    out = np.take_along_axis(x, np.clip(idx, 0, None), 1)
    return np.where(idx >= 0, out, x if pad is None else pad)


def _flip_codes(N: np.ndarray, v: int, k: int) -> np.ndarray:
    """Rows of N indexed by k-tuples written right to left, re-indexed by the same tuples left to right."""
    return N.reshape((v,) * k + N.shape[1:]).transpose(tuple(range(k))[::-1] + (k,)).reshape(N.shape)


def weighted_kmeans(X: np.ndarray, w: np.ndarray, k: int, n_init: int, seed: int, iters: int = 100):
    """Weighted k-means (k-means++ seeding, Lloyd iterations), the best of `n_init` restarts by inertia:
    (labels (n,), inertia). numpy only: scikit-learn's KMeans costs ~60 ms per restart on the few hundred points
    clustered here, this a fraction of a millisecond."""
    rng = np.random.default_rng(seed)
    n = len(X)
    best = (None, np.inf)
    for _ in range(n_init):
        centers = [X[rng.choice(n, p=w / w.sum())]]
        for _ in range(1, k):
            d2 = ((X[:, None, :] - np.asarray(centers)[None]) ** 2).sum(-1).min(1) * w
            centers.append(X[rng.choice(n, p=d2 / d2.sum())] if d2.sum() > 0 else X[rng.integers(n)])
        C = np.asarray(centers)
        labels = None
        for _ in range(iters):
            d2 = ((X[:, None, :] - C[None]) ** 2).sum(-1)
            new = d2.argmin(1)
            if labels is not None and np.array_equal(new, labels):
                break
            labels = new
            mass = np.bincount(labels, weights=w, minlength=k)
            sums = np.stack([np.bincount(labels, weights=w * X[:, j], minlength=k) for j in range(X.shape[1])], 1)
            C = np.where(mass[:, None] > 0, sums / np.maximum(mass, 1e-300)[:, None], C)  # empty: keep the center
        inertia = float((w * ((X - C[labels]) ** 2).sum(1)).sum())
        if inertia < best[1]:
            best = (labels.astype(np.int64), inertia)
    return best


def _span_lengths(level: int) -> list[int]:
    """Lengths of a level-`level` constituent: 2**level .. 3**level (all leaves at the same depth)."""
    return list(range(2**level, 3**level + 1))


def _edge_products(E: np.ndarray, lens: list[int], k: int, lengths: np.ndarray | None = None) -> np.ndarray:
    """Sum over length combinations of the outer products of k adjacent spans starting at position 0:
    (n, v**k) counts of each k-tuple of symbols at the left edge. With `lengths`, only the combinations that
    cover the whole string (total length == the sample's length) count: the samples are grouped by length so
    that each group multiplies only its own combinations."""
    n, D, _, v = E.shape
    out = np.zeros((n, v**k), np.float32)
    combos = {}
    for combo in itertools.product(range(len(lens)), repeat=k):
        offs = np.cumsum([0] + [lens[j] for j in combo])
        if offs[-1] <= D:
            combos.setdefault(int(offs[-1]), []).append((combo, offs))
    groups = [(slice(None), [c for cs in combos.values() for c in cs])] if lengths is None else \
        [(np.nonzero(lengths == tot)[0], cs) for tot, cs in combos.items() if (lengths == tot).any()]
    for rows, cs in groups:
        Er = E[rows]
        acc = np.zeros((len(Er), v**k), np.float32)
        for combo, offs in cs:
            X = Er[:, 0, combo[0], :]
            for j, o in zip(combo[1:], offs[1:-1]):
                X = (X[:, :, None] * Er[:, o, j, None, :]).reshape(len(Er), -1)
            acc += X
        out[rows] = acc
    return out


def _build(E: np.ndarray, lens: list[int], new_lens: list[int], rules: list[tuple[np.ndarray, np.ndarray]],
           n_sym: int) -> np.ndarray:
    """The next level's chart (n, D, len(new lengths), n_sym) from chart E and the learned rules: for each arity
    k, ``children`` (R, k) symbols and ``parent`` (R,) symbols. Vectorised over samples and start positions;
    each rule is read as the product of its children's chart entries (the rules are few, so this is cheaper than
    a dense product over all v**k tuples)."""
    n, D, _, v = E.shape
    out = np.zeros((n, D, len(new_lens), n_sym), np.float32)
    for children, parent in rules:
        if len(parent) == 0:
            continue
        k = children.shape[1]
        onehot = np.zeros((len(parent), n_sym), np.float32)
        onehot[np.arange(len(parent)), parent] = 1
        for combo in itertools.product(range(len(lens)), repeat=k):
            offs = np.cumsum([0] + [lens[j] for j in combo])
            tot = int(offs[-1])
            if tot not in new_lens:
                continue
            npos = D - tot + 1
            X = None
            for j, o, c in zip(combo, offs[:-1], children.T):
                part = E[:, o:o + npos, j, :][:, :, c]  # (n, npos, R)
                X = part if X is None else X * part
            out[:, :npos, new_lens.index(tot), :] += X @ onehot
    return out


@register
class Moments(Learner):
    """Moment-based layerwise learner (see the module docstring for the steps and what is ours).

    Parameters
    ----------
    L: depth of the grammar; None = the grammar's (fit with grammar=), else read from d: d = 3**L (padded
        varying-topology strings) or d = 2**L (a plain binary RHM).
    rule_share: a tuple is a rule when its score (min of its left-edge and right-edge counts) reaches this share
        of the count-weighted mean score of its arity (step 2).
    min_count: tuples seen fewer times at either edge are not used as rules.
    n_init: k-means restarts (scikit-learn's default 10).
    pad_token: the padding token; None = the grammar's ``pad_token`` when fit with a grammar, else the largest
        token id when the rows are 3**L wide and every occurrence of that token is in a trailing run
        (rhm.VaryingRHM pads with v, one past the vocabulary), else no padding.
    seed: seeds k-means.
    """

    name = "moments"

    def __init__(self, L=None, rule_share=0.2, min_count=2, n_init=10, pad_token=None, seed=0):
        self.L = L
        self.rule_share = rule_share
        self.min_count = min_count
        self.n_init = n_init
        self.pad_token = pad_token
        self.seed = seed

    # ------------------------------------------------------------------------------------------- checks
    def _check_params(self):
        check_int("L", self.L, 1, 12, none_ok=True)
        check_float("rule_share", self.rule_share, 0.0)
        if self.rule_share > 1:
            raise ValueError(f"rule_share={self.rule_share!r} must be in [0, 1]")
        check_int("min_count", self.min_count, 1)
        check_int("n_init", self.n_init, 1, 1000)
        check_int("pad_token", self.pad_token, 0, none_ok=True)
        check_seed(self.seed)

    def _depth(self, d: int) -> int:
        g = self.grammar_
        if self.L is not None:
            L = int(self.L)
        elif g is not None and hasattr(g, "L"):
            L = int(g.L)
        else:
            L3, L2 = round(math.log(d, 3)), round(math.log(d, 2))
            L = L3 if 3**L3 == d else L2 if 2**L2 == d else 0
            if L < 1:
                raise ValueError(f"x has d={d} tokens: not 3**L (padded varying-topology strings) nor 2**L; "
                                 "pass Moments(L=...) or fit(x, y, grammar=g)")
        if not 2**L <= d <= 3**L:
            raise ValueError(f"L={L} needs strings of 2**L={2**L} .. 3**L={3**L} tokens, x has d={d}")
        if g is not None and getattr(g, "spec", None) is not None and getattr(g.spec, "s", 2) not in (2, 3) \
                and not hasattr(g, "p2"):
            raise ValueError(f"the moments learner handles nodes of arity 2 and 3; this grammar has "
                             f"s={g.spec.s}")
        return L

    def _pad(self, x: np.ndarray) -> int | None:
        if self.pad_token is not None:
            return int(self.pad_token)
        g = self.grammar_
        if g is not None:  # a grammar without a pad token (a plain RHM) has fixed-length strings
            return None if getattr(g, "pad_token", None) is None else int(g.pad_token)
        d = x.shape[1]
        if 3 ** round(np.log(d) / np.log(3)) != d:  # padded varying strings are 3**L wide: fixed-length data
            return None
        top = int(x.max())
        is_top = x == top
        # a trailing run: once the token appears, every later position holds it too
        trailing = bool(np.all(np.maximum.accumulate(is_top, axis=1) == is_top))
        return top if trailing and top > 0 else None

    def _check_strings(self, x: np.ndarray, pad: int | None) -> np.ndarray:
        """Lengths (n,) of the padded strings; ValueError when a pad precedes a token or a length is off."""
        if pad is None:
            lengths = np.full(len(x), x.shape[1])
        else:
            is_pad = x == pad
            lengths = np.argmax(is_pad, axis=1)
            lengths[~is_pad.any(1)] = x.shape[1]
            bad = is_pad.sum(1) != x.shape[1] - lengths
            if bad.any():
                raise ValueError(f"x row {int(np.argmax(bad))} has the pad token {pad} before a non-pad token: "
                                 "strings must be padded on the right only")
        L = self.L_
        off = (lengths < 2**L) | (lengths > 3**L)
        if off.any():
            i = int(np.argmax(off))
            raise ValueError(f"x row {i} has length {int(lengths[i])}, outside 2**L={2**L} .. 3**L={3**L} "
                             f"for L={L}")
        return lengths

    def _onehot(self, x: np.ndarray) -> np.ndarray:
        n, D = x.shape
        E = np.zeros((n, D, 1, self.n_sym_), np.float32)
        rows, cols = np.nonzero(x != self.pad_) if self.pad_ is not None else np.nonzero(np.ones_like(x, bool))
        E[rows, cols, 0, x[rows, cols]] = 1
        return E

    # ---------------------------------------------------------------------------------------------- fit
    def _fit(self, x, y):
        self._check_params()
        t0 = time.perf_counter()
        self.L_ = self._depth(x.shape[1])
        self.pad_ = self._pad(x)
        if self.pad_ is not None and self.pad_ >= self.v_:
            self.v_ = self.pad_ + 1  # the pad may lie outside the tokens seen (no string was padded)
        # symbols per level: the tokens other than the pad (the RHM's v at every level below the root)
        self.n_sym_ = self.pad_ if self.pad_ is not None and self.pad_ == self.v_ - 1 else self.v_
        lengths = self._check_strings(x, self.pad_)
        # fixed-length data (a plain RHM) has one arity: no pair (s = 3) or no triple (s = 2) is a rule
        self.arities_ = (2,) if lengths.max() == 2**self.L_ else (3,) if lengths.min() == 3**self.L_ else (2, 3)
        n, D = x.shape
        v, C = self.n_sym_, self.n_classes_
        # the chart (n, D, lengths, v) and the triple products (n, v**3) per level, float32
        limits.check_bytes("x", f"the moments learner's chart and triple moments for {n:,} strings",
                           4.0 * n * (D * 3 ** max(self.L_ - 1, 0) * v + 2 * v**3 + D * 64))
        Y = np.zeros((n, C), np.float32)
        Y[np.arange(n), y] = 1
        prior = Y.mean(0)
        self.prior_ = prior
        E, lens = self._onehot(x), [1]
        Er = self._onehot(_reverse(x, lengths, self.pad_))  # the strings read right to left
        self.rules_, info = [], []
        seed = check_seed(self.seed)
        for level in range(1, self.L_):
            # left-edge and right-edge tuple counts per class, both indexed by the tuple read left to right
            N2 = self._moments(E, lens, Y, 2), _flip_codes(self._moments(Er, lens, Y, 2), v, 2)
            N3 = self._moments(E, lens, Y, 3), _flip_codes(self._moments(Er, lens, Y, 3), v, 3)
            binary, ternary = self._rules(*(n.sum(1) for n in N2 + N3), v)
            binary &= 2 in self.arities_
            ternary &= 3 in self.arities_
            codes2, codes3 = np.nonzero(binary)[0], np.nonzero(ternary)[0]
            left = np.concatenate([N2[0][codes2], N3[0][codes3]]).astype(np.float64)
            right = np.concatenate([N2[1][codes2], N3[1][codes3]]).astype(np.float64)
            rec = {"level": level, "binary_rules": int(len(codes2)), "ternary_rules": int(len(codes3))}
            if len(left) == 0:
                labels = np.zeros(0, np.int64)
            else:
                wl, wr = left.sum(1), right.sum(1)
                # the root covariance at both edges: synonyms share both
                cov = np.concatenate([left / wl[:, None] - prior, right / wr[:, None] - prior], 1)
                labels, rec["inertia"] = weighted_kmeans(cov, np.minimum(wl, wr), min(v, len(cov)), self.n_init,
                                                         seed + level)
            pairs = np.stack([codes2 // v, codes2 % v], 1)
            triples = np.stack([codes3 // (v * v), (codes3 // v) % v, codes3 % v], 1)
            rules = [(pairs, labels[:len(codes2)]), (triples, labels[len(codes2):])]
            self.rules_.append(rules)
            E, new_lens = self._chart(E, lens, level, rules)
            Er, _ = self._chart(Er, lens, level, [(ch[:, ::-1], par) for ch, par in rules])
            lens = new_lens
            info.append(rec)
        # the root: class counts of the pairs and triples that span the whole string
        self.top_ = []
        for k in (2, 3):
            T = self._chunked(lambda e, ln, yy: _edge_products(e, lens, k, ln).T @ yy, E, lengths, Y,
                              (v**k, C))
            self.top_.append(T / np.maximum(T.sum(1, keepdims=True), 1))
        derivable = self._scores(E, lens, lengths).sum(1) > 0
        self.info_.update({"levels": info, "train_derivable": float(derivable.mean()), "pad_token": self.pad_,
                           "L": self.L_, "fit_seconds": time.perf_counter() - t0})

    def _rules(self, n2l, n2r, n3l, n3r, v):
        """Step 2: which pairs are binary rules and which triples ternary rules, from their counts at the left
        edge (n2l, n3l) and at the right edge (n2r, n3r). A rule occurs at both edges; a non-rule tuple at the
        left edge (a binary rule and the next symbol, or a ternary rule's first two symbols) is rarely one at
        the right edge, and the converse. So a tuple's score is min(left count, right count); the pairs' counts
        first lose the occurrences explained by the ternary rules found (as prefix on the left, as suffix on
        the right). A tuple is a rule when its score reaches ``min_count`` and ``rule_share`` times the
        count-weighted mean score of its arity (a ratio, so that a larger sample does not admit more noise)."""
        def keep(score):
            ok = score >= self.min_count
            if not ok.any():
                return ok
            mean = float((score[ok] ** 2).sum() / score[ok].sum())
            return ok & (score >= self.rule_share * mean)

        ternary = keep(np.minimum(n3l, n3r))
        prefix = (n3l * ternary).reshape(v * v, v).sum(1)
        suffix = (n3r * ternary).reshape(v, v * v).sum(0)
        binary = keep(np.minimum(n2l - prefix, n2r - suffix))
        return binary, ternary

    def _moments(self, E, lens, Y, k):
        """Left-edge k-tuple counts per class (v**k, n_classes)."""
        return self._chunked(lambda e, _ln, yy: _edge_products(e, lens, k).T @ yy, E, None, Y,
                             (E.shape[-1] ** k, Y.shape[1]))

    @staticmethod
    def _chunked(fn, E, lengths, Y, shape):
        out = np.zeros(shape, np.float64)
        for a in range(0, len(E), _CHUNK):
            sl = slice(a, a + _CHUNK)
            out += fn(E[sl], None if lengths is None else lengths[sl], Y[sl])
        return out

    def _chart(self, E, lens, level, rules):
        """The level-`level` chart and its span lengths."""
        new_lens = [ln for ln in _span_lengths(level) if ln <= E.shape[1]]
        return np.concatenate([_build(E[a:a + _CHUNK], lens, new_lens, rules, self.n_sym_)
                               for a in range(0, len(E), _CHUNK)]), new_lens

    def _scores(self, E, lens, lengths):
        """(n, n_classes): summed top-table class frequencies over every whole-string derivation."""
        S = np.zeros((len(E), self.n_classes_))
        for k, T in zip((2, 3), self.top_):
            for a in range(0, len(E), _CHUNK):
                sl = slice(a, a + _CHUNK)
                S[sl] += _edge_products(E[sl], lens, k, lengths[sl]) @ T
        return S

    # ------------------------------------------------------------------------------------------ predict
    def decision_function(self, x) -> np.ndarray:
        """(n, n_classes) class scores: the sum over whole-string derivations of the root table's class
        frequencies (all zeros when the learned rules derive no parse of the string)."""
        x = self._check_xy(x, fitting=False)
        return self._decision(x)

    def _decision(self, x):
        lengths = self._check_strings(x, self.pad_)
        E, lens = self._onehot(x), [1]
        for level, rules in enumerate(self.rules_, start=1):
            E, lens = self._chart(E, lens, level, rules)
        return self._scores(E, lens, lengths)

    def _predict(self, x):
        S = self._decision(x)
        # no derivation: the class prior decides (ties of a derivation broken the same way)
        return (S + 1e-9 * self.prior_).argmax(1)
