"""The hard network of a fit (`FitState`): per level a patch -> symbol map, and a top model for the label.

Level l = L..2 maps each distinct level-l patch (s level-l symbols, level L = the input) to a level-(l-1)
symbol; level 1's patch (the s top symbols) predicts the label by its smoothed label histogram when it was seen
in training, else by naive Bayes over its slots. A `FitState` is also what the restart search keeps and
compares: its score, the restart it came from, its training label log-likelihood and its refinement sweeps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ... import pcfg
from ...patches import lookup, patch_ids


@dataclass
class FitState:
    """One fit: tree shape, maps codes[l] (U_l,) sorted patch codes -> maps[l] (U_l,) symbols, vocab[l] the
    alphabet at level l, the top model (top_label, top_logp, nb_log) and its restart record."""

    s: int
    L: int
    n_classes: int
    prior: float
    label_prior: np.ndarray
    codes: dict = field(default_factory=dict)
    maps: dict = field(default_factory=dict)
    vocab: dict = field(default_factory=dict)
    top_label: np.ndarray | None = None
    top_logp: np.ndarray | None = None
    nb_log: np.ndarray | None = None
    score: float = -np.inf  # restart criterion (joint or label log-likelihood)
    restart: int = 0
    loglik: float = float("nan")  # training label log-likelihood
    sweeps: int = 0  # refinement sweeps run

    def copy(self) -> FitState:
        """A copy that later fits cannot change (the maps' arrays are replaced, never written in place)."""
        return dataclasses.replace(self, codes=dict(self.codes), maps=dict(self.maps), vocab=dict(self.vocab))

    @property
    def nb_prior(self) -> np.ndarray:
        return np.log(self.label_prior + 1e-12)

    # ------------------------------------------------------------------------------------- decoding
    def lookup(self, level: int, patches: np.ndarray) -> np.ndarray:
        """Symbols (...) of level-`level` patches (..., s) under the current map; -1 if unknown/unseen."""
        return lookup(self.codes[level], self.maps[level], patches, self.vocab[level])

    def symbols(self, x) -> dict:
        """Symbols of every level {L: x, ..., 1: (n, s)} for inputs x; -1 marks patches never seen in training."""
        T = x.astype(np.int64)
        out = {self.L: T}
        for level in range(self.L, 1, -1):
            T = self.lookup(level, T.reshape(len(T), -1, self.s))
            out[level - 1] = T
        return out

    # ------------------------------------------------------------------------------------- top model
    def fit_top(self, T, y, rows):
        """Level 1 from its symbols T (n, s) on samples `rows`: the label of each distinct top patch (majority,
        smoothed log-probabilities), with naive Bayes for unseen patches."""
        n_c, k = self.n_classes, self.vocab[1]
        uniq, inv = patch_ids(T[rows].reshape(len(rows), 1, self.s), k)
        inv = inv[:, 0]
        hist = np.zeros((len(uniq), n_c))
        np.add.at(hist, (inv, y[rows]), 1.0)
        self.codes[1], self.top_label = uniq, hist.argmax(1)
        with np.errstate(divide="ignore"):  # a class absent from training keeps log-probability -inf
            self.top_logp = np.log((hist + self.prior * self.label_prior) / (hist.sum(1, keepdims=True) + self.prior))
        # naive Bayes: log P(label) + sum_slot log P(symbol at slot | label), Dirichlet-smoothed
        slot = np.zeros((self.s, k, n_c))
        for a in range(self.s):
            np.add.at(slot[a], (T[rows][:, a], y[rows]), 1.0)
        self.nb_log = np.log((slot + 1.0) / (slot.sum(1, keepdims=True) + k))

    def top_scores(self, top: np.ndarray):
        """For level-1 symbols `top` (n, s): whether the patch was seen in training, its row in the table, and
        the naive-Bayes log scores (n, n_classes) used for unseen patches."""
        pos = lookup(self.codes[1], np.arange(len(self.codes[1])), top, self.vocab[1])
        found, pos = pos >= 0, np.maximum(pos, 0)
        score = np.tile(self.nb_prior, (len(top), 1))
        for a in range(self.s):
            ok = top[:, a] >= 0
            score[ok] += self.nb_log[a][top[ok, a]]
        return found, pos, score

    def top_logprob(self, top: np.ndarray, y: np.ndarray) -> np.ndarray:
        """log P(y | level-1 symbols `top` (n, s)): smoothed table when the patch was seen, else naive Bayes."""
        found, pos, score = self.top_scores(top)
        score = score - score.max(1, keepdims=True)
        nb = score - np.log(np.exp(score).sum(1, keepdims=True))
        logp = np.where(found[:, None], self.top_logp[pos], nb)
        return logp[np.arange(len(y)), y]

    def predict(self, x) -> np.ndarray:
        """Labels of the hard network."""
        found, pos, score = self.top_scores(self.symbols(x)[1])
        return np.where(found, self.top_label[pos], score.argmax(1))

    # ------------------------------------------------------------------------------------- as a grammar
    def rule_counts(self, x, y) -> list[np.ndarray]:
        """Rule counts of the hard-decoded training trees (rhm.pcfg.rule_counts; level 0 = the labels)."""
        sym = self.symbols(x)
        sym[0] = y[:, None]
        sizes = [self.n_classes] + [self.vocab[lv] for lv in range(1, self.L + 1)]
        return pcfg.rule_counts([sym[lv] for lv in range(self.L + 1)], sizes, self.s)

    def hard_joint_loglik(self, x, y) -> float:
        """log P(x, y) of the training set under the grammar of the hard maps (Dirichlet-smoothed rule counts,
        the start of EM), summed over every latent symbol by the inside pass."""
        tables = pcfg.dirichlet_tables(self.rule_counts(x, y), self.prior)
        logp = pcfg.log_likelihood(tables, x, self.s)
        return float(logp[np.arange(len(y)), y].sum()) + float(np.log(self.label_prior[y]).sum())

