"""The soft tree grammar of Garnier-Brun, Mézard, Moscato, Saglietti ("How transformers learn structured data:
insights from hierarchical filtering", ICML 2025, arXiv 2408.15138, §2).

A full s-ary tree of depth L with the vocabulary v at every level. A symbol a rewrites into the s-tuple
(b_1..b_s) with probability M[a, b_1..b_s], one transition tensor shared by every level. M is drawn once: the
v**s tuples are dealt at random into disjoint sets, m per parent (the paper's "non-overlapping" production
rules, m = v**(s-1) so every tuple has exactly one parent), and parent a gives its m tuples the probabilities
softmax(beta * z_a), z_a i.i.d. standard Gaussian scores (the paper's sigma is our beta). The root is uniform.
beta = 0 gives uniform rules (the RHM's distribution), large beta a nearly deterministic grammar (the tuple of
the largest score). A tuple has one parent, so the tree is recoverable from the leaves; the difficulty lies in
the probabilities (exact inference, ``rhm.inference``, gives the Bayes-optimal class and token posteriors).

With n_classes != v the root level gets its own table (n_classes parents, m disjoint tuples each). With noise,
each token is replaced with probability eps by a uniform one, as for the RHM.

overlap=True (spec ``rules="overlap"``) is the ambiguous variant: every parent draws its m tuples independently of
the other parents (distinct within a parent, kept in code order), so a tuple may have several parents and the
leaves no longer fix the tree; m may go up to v**s (its default then), where every parent has every tuple: the
dense tensor M[a, b, c] ∝ exp(beta z_abc) of the authors' earlier generator (emanuele-moscato/tree-language,
modules/tree_generation.py). The paper's experiments use the non-overlapping rules (docs/variants.md). Exact
inference (``rhm.inference``) sums over every parse; ``parse`` is refused.
"""

from __future__ import annotations

import numpy as np

from ._io import check_header, load_json, save_json
from .filtering import register_format
from .grammar import _filtered_sample, _uniform_rules, check_rules
from .patches import codes, digits
from .spec import OVERLAP_RULES, GrammarSpec, register_builder
from .treepcfg import TreePCFG
from .validation import check_float, check_int

__all__ = ["SoftGrammar"]

SOFT_FORMAT = "rhm-soft-grammar"


def _overlapping_rules(rng, v, m, s, L, n_classes):
    """Per level, every parent's m distinct s-tuples drawn independently of the other parents (a uniform random
    m-subset of the v**s tuples per parent, by argsort of uniform keys), in code order; the root level has
    n_classes parents, the others v."""
    out = []
    for n in [n_classes] + [v] * (L - 1):
        picked = np.sort(np.argsort(rng.random((n, v**s)), axis=1)[:, :m], axis=1)
        out.append(digits(picked.reshape(-1), v, s).reshape(n, m, s))
    return tuple(out)


def _check_overlapping(rules, v: int) -> tuple:
    """Read-only int64 tables of the overlapping variant: symbols in [0, v), m distinct tuples per parent."""
    out = []
    for lv, table in enumerate(rules):
        arr = np.asarray(table, dtype=np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= v):
            raise ValueError(f"rules[{lv}] has symbols outside [0, v={v})")
        c = np.sort(codes(arr, v), axis=1)
        if (np.diff(c, axis=1) == 0).any():
            raise ValueError(f"rules[{lv}] repeats a tuple under one parent")
        arr.setflags(write=False)
        out.append(arr)
    return tuple(out)


def _softmax(z: np.ndarray, beta: float) -> np.ndarray:
    w = beta * z
    w = np.exp(w - w.max(axis=-1, keepdims=True))
    return w / w.sum(axis=-1, keepdims=True)


@register_format(SOFT_FORMAT)
class SoftGrammar:
    """The soft grammar of Garnier-Brun et al. (2025): vocabulary v, arity s, depth L, inverse temperature beta.

    Parameters
    ----------
    v, s, L: vocabulary at every level, arity (the input has d = s**L tokens), depth.
    beta: >= 0, the inverse temperature of the rule probabilities softmax(beta * z), z ~ N(0, 1).
    seed: an int; the same seed gives the same grammar.
    n_classes: root symbols (default v); m: rules per symbol (default v**s // max(v, n_classes), the paper's
        v**(s-1) when n_classes == v).
    noise: eps in [0, 1], the token noise of the RHM.
    overlap: False (the paper's disjoint rules) or True (the ambiguous variant: each parent draws its m tuples
        independently, default m = v**s, every tuple under every parent).
    """

    def __init__(self, v, s, L, beta, seed=0, n_classes=None, m=None, noise=0.0, overlap=False):
        v = check_int("v", v, 2)
        s = check_int("s", s, 2)
        n_c = v if n_classes is None else check_int("n_classes", n_classes, 2)
        if not isinstance(overlap, bool):
            raise ValueError(f"overlap={overlap!r} must be True or False")
        m = (v**s if overlap else v**s // max(v, n_c)) if m is None else m
        spec = GrammarSpec(v=v, m=m, s=s, L=L, n_classes=n_c, seed=check_int("seed", seed, 0),
                           beta=check_float("beta", beta, 0.0), noise=noise,
                           rules=OVERLAP_RULES if overlap else "uniform")
        self.v, self.m, self.s, self.L, self.n_classes = spec.v, spec.m, spec.s, spec.L, spec.n_classes
        self.beta, self.seed, self.noise, self.overlap = spec.beta, spec.seed, spec.noise, overlap
        self._spec = spec
        rng = np.random.default_rng(self.seed)
        deal = _overlapping_rules if overlap else _uniform_rules
        if n_c == v:  # one transition tensor M shared by every level (the paper)
            table = deal(rng, v, self.m, s, 1, v)[0]
            scores = rng.standard_normal((v, self.m))
            rules, z = (table,) * self.L, (scores,) * self.L
        else:  # the root level has its own parents
            rules = deal(rng, v, self.m, s, self.L, n_c)
            z = tuple(rng.standard_normal((len(r), self.m)) for r in rules)
        self.rules = _check_overlapping(rules, v) if overlap else check_rules(list(rules), v, self.m, s, self.L, n_c)
        probs = []
        for p in (_softmax(zz, self.beta) for zz in z):
            p.setflags(write=False)
            probs.append(p)
        self.rule_probs = tuple(probs)

    # ----------------------------------------------------------------------------------------- sizes
    zipf = None
    zipf_levels = None
    rule_sampler = "soft"

    @property
    def d(self) -> int:
        return self.s**self.L

    @property
    def vocab_size(self) -> int:
        return self.v

    @property
    def num_nodes(self) -> int:
        return (self.s**self.L - 1) // (self.s - 1)

    @property
    def num_inputs(self) -> int:
        """Inputs of positive probability: n_classes m**num_nodes (every rule has positive probability); with
        overlapping rules that count is of derivations, an upper bound on the inputs."""
        return self.n_classes * self.m**self.num_nodes

    @property
    def token_dtype(self) -> np.dtype:
        top = max(self.v, self.n_classes) - 1
        return np.dtype(np.uint8 if top < 256 else np.uint16 if top < 65536 else np.uint32)

    def symbols(self, level: int) -> int:
        return self.n_classes if level == 0 else self.v

    @property
    def spec(self) -> GrammarSpec:
        return self._spec

    @property
    def is_plain(self) -> bool:
        """False: the soft grammar is sampled i.i.d. (no distinct-input protocol, even at beta = 0)."""
        return False

    def tree_pcfg(self) -> TreePCFG:
        """Rules and probabilities as they are (the root prior uniform): every rhm.inference function runs on it."""
        cache = self.__dict__.get("_tree_pcfg")
        if cache is None:
            cache = self.__dict__["_tree_pcfg"] = TreePCFG(
                children=self.rules, probs=self.rule_probs, prior=np.full(self.n_classes, 1.0 / self.n_classes),
                V=self.v, noise=self.noise)
        return cache

    def __repr__(self) -> str:
        return (f"SoftGrammar(v={self.v}, s={self.s}, L={self.L}, beta={self.beta!r}, seed={self.seed}, "
                f"n_classes={self.n_classes}, m={self.m}" + (f", noise={self.noise!r}" if self.noise else "")
                + (", overlap=True)" if self.overlap else ")"))

    def __eq__(self, other) -> bool:
        return isinstance(other, SoftGrammar) and self.spec == other.spec

    __hash__ = None

    # -------------------------------------------------------------------------------------- sampling
    def sample(self, n, seed=None, replace=True, return_tree=False, filter_level=0):
        """n i.i.d. draws: x (n, d) tokens, y (n,) root classes (and the L+1 levels with return_tree).

        Per level one categorical draw over the m rules of every node at once (no loop over samples or nodes).
        filter_level=k: hierarchical filtering at level k (:mod:`rhm.filtering`). replace=False is refused
        unless beta = 0 and no noise (the inputs are then equally likely: the RHM's protocol)."""
        if filter_level:
            return _filtered_sample(self, n, seed, replace, return_tree, filter_level)
        if not replace:
            raise ValueError(f"replace=False is not defined for beta={self.beta}: inputs are not equally likely; "
                             "sample with replacement")
        from .filtering import sample_pcfg

        return sample_pcfg(self, n, seed, return_tree=return_tree)

    def filtered(self, k):
        """The level-k filtered model (:class:`rhm.filtering.FilteredGrammar`)."""
        from .filtering import FilteredGrammar

        return FilteredGrammar(self, k)

    def resample_below(self, tree, level, seed=None, return_tree=False):
        """Keep tree[level] and redraw every derivation below it (as :func:`rhm.sampling.resample_below`)."""
        from . import sampling
        from .filtering import PCFGSampler

        level = check_int("level", level, 0, self.L)
        top = np.asarray(tree[level])
        top = top.reshape(-1, 1) if level == 0 else top
        if top.ndim != 2 or top.shape[1] != self.s**level or not np.issubdtype(top.dtype, np.integer) or (
                top.size and (top.min() < 0 or top.max() >= self.symbols(level))):
            raise ValueError(f"tree[{level}] must hold (n, {self.s**level}) symbols in [0, {self.symbols(level)})")
        rng = sampling._rng(seed)
        x, levels = PCFGSampler(self.tree_pcfg(), self.token_dtype).expand(rng, top, level, return_tree)
        clean = x.copy() if (return_tree and self.noise) else x
        x = sampling.apply_noise(x, self.noise, self.v, rng)
        if not return_tree:
            return x
        levels[-1] = clean
        levels[0] = levels[0][:, 0] if level == 0 else levels[0]
        return x, [np.array(t, copy=True) for t in tree[:level]] + levels

    def stream(self, batch_size, seed=None, n_batches=None):
        from . import sampling

        return sampling.stream(self, batch_size, seed=seed, n_batches=n_batches)

    def parse(self, x, return_tree=False):
        """The root of the unique derivation of each clean input (-1 where none); ``return_tree`` is not offered:
        use ``rhm.inference.latent_posterior``."""
        from .treepcfg import compiled
        from .validation import check_tokens

        if return_tree:
            raise ValueError("return_tree=True is not offered by SoftGrammar.parse: use "
                             "rhm.inference.latent_posterior(g, x, level)")
        if self.overlap:
            raise ValueError("parse is not defined for overlap=True: a tuple has several parents, so the leaves do "
                             "not fix the root; use rhm.inference.class_posterior(g, x)")
        x = check_tokens(x, self.d, self.v)
        return compiled(self).fast.run(x, self.tree_pcfg().prior)[0]

    # ------------------------------------------------------------------------------------- save/load
    def to_dict(self) -> dict:
        """JSON fields: the parameters, and the rule tables and probabilities (checked again on loading)."""
        out = {"format": SOFT_FORMAT, "version": 1, "v": self.v, "s": self.s, "L": self.L, "beta": self.beta,
               "seed": self.seed, "n_classes": self.n_classes, "m": self.m, "noise": self.noise,
               "rules": [r.tolist() for r in self.rules], "probs": [p.tolist() for p in self.rule_probs]}
        if self.overlap:  # written only when set: the files of the disjoint grammar are unchanged
            out["overlap"] = True
        return out

    def save(self, path) -> None:
        """Write the grammar as JSON (atomically)."""
        save_json(self.to_dict(), path)

    @classmethod
    def from_dict(cls, data) -> "SoftGrammar":
        """Rebuild from :meth:`to_dict` output: the parameters rebuild it, the stored tables must match them."""
        check_header(data, SOFT_FORMAT, "soft grammar", ("v", "s", "L", "beta", "seed"))
        g = cls(data["v"], data["s"], data["L"], data["beta"], seed=data["seed"], n_classes=data.get("n_classes"),
                m=data.get("m"), noise=data.get("noise", 0.0), overlap=data.get("overlap", False))
        for key, mine in (("rules", g.rules), ("probs", g.rule_probs)):
            if key in data:
                try:
                    same = len(data[key]) == len(mine) and all(
                        np.shape(t) == a.shape and np.allclose(np.asarray(t, dtype=np.float64), a, rtol=1e-12,
                                                               atol=1e-15) for t, a in zip(data[key], mine))
                except (ValueError, TypeError):
                    same = False
                if not same:
                    raise ValueError(f"soft grammar JSON field {key} does not match the grammar of its parameters "
                                     f"(v, s, L, beta, seed): the file was edited or comes from another version")
        return g

    @classmethod
    def load(cls, path) -> "SoftGrammar":
        """Read a grammar written by :meth:`save`; any malformed file raises ValueError."""
        return load_json(path, cls.from_dict, "soft grammar")


@register_builder("soft")
def _build(spec) -> SoftGrammar:
    return SoftGrammar(spec.v, spec.s, spec.L, spec.beta, seed=spec.seed, n_classes=spec.n_classes, m=spec.m,
                       noise=spec.noise, overlap=spec.rules == OVERLAP_RULES)
