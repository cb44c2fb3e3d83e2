"""The paper's learner: hierarchical shallow-to-deep chaining (Ren, Dandi, Krzakala, Lee 2026, §2–§3).

Layer l (l = L at the input, up to 1) maps each non-overlapping s-patch of level-l token embeddings to

    x = Phi(h_1 ∘ ... ∘ h_s) = M^(-1/2) [cos(h Omega), sin(h Omega)],   Omega ~ N(0, sigma_l^-2 I)   (eq. 6)
    o = W^(l) x,   h' = o / <1, o>                                                                      (eq. 2)

with Omega fixed and shared by all patches of the level, and W^(l) (n_classes x 2M) the only trained weight.
Stage l (bottom-up) fits W^(l) alone, by ridge regression of the one-hot **root label** on the features of the
**first** level-l patch (eq. 3, lambda = 1/|P_l|), lower layers frozen, upper layers ignored. The normalised
outputs estimate q^(l)_mu = P(label | first level-l patch = mu), equal for synonyms (paper eq. 4 and (8)).

Embedding sizes: input tokens are one-hot in R^v; every learned embedding estimates a label distribution and
so lives in R^{n_classes} (= R^V in the paper, where n_c = V).

Exact computational identities used (they change no result, only cost): the one-hot bottom layer is an
embedding lookup (h Omega = sum_i Omega_i[token_i]); inputs whose first level-l subtree is identical have
identical features, so stage l aggregates them (counts and label histograms) before forming X^T X and X^T Y;
full-batch GD is run on those sufficient statistics (the iterates are exactly those of GD on eq. 3).

Normalisation guard: <1, o> can approach 0 for embeddings far from every training cluster (paper.md §5). The
denominator is replaced by sign(<1,o>) * max(|<1,o>|, guard) (sign(0) = +1), so outputs stay finite (at most
||o|| / guard); on training clusters <1,o> = p/(p + lambda) >~ 1/(1 + kappa), far above the default guard.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from .. import theory
from ..patches import lookup, patch_ids
from ..validation import check_choice, check_float, check_int
from . import register
from .base import Learner, distinct_patches, fresh_stage_sizes, resolve_device, resolve_dtype
from .linkage import mst_edges

SIGMA_MODES = ("data", "oracle", "theory", "validate")
SOLVERS = ("closed", "gd")
SAMPLE_MODES = ("fresh", "reuse")
# Elements per feature chunk (rows x 2M): bounds memory of any forward pass to ~32 MB in float32.
_CHUNK_ELEMS = 1 << 23


def _str_or_positive(name, value, choices, maximum=None):
    """`value` is one of the strings `choices` or a finite number > 0 (and < maximum)."""
    if isinstance(value, str):
        return check_choice(name, value, choices)
    try:
        return check_float(name, value, 0.0, strict=True, maximum=maximum)
    except ValueError as err:
        raise ValueError(f"{err} (or one of {choices})") from None


def separation_from_data(points: np.ndarray, n_clusters: int, rng: np.random.Generator,
                         max_points: int = 1500) -> tuple[float, int]:
    """Estimate the inter-cluster separation rho~ of clustered embeddings (Assumption 9b) without labels.

    Single linkage: build the minimum spanning tree of (a sample of) the distinct points and cut its
    n_clusters - 1 longest edges; the shortest cut edge is the smallest distance between two clusters, i.e.
    rho~. The learner knows the vocabulary size (every level has v symbols), so n_clusters = v. If fewer symbols
    are present, an intra-cluster edge is cut and rho~ is underestimated, which errs on the safe side (a smaller
    sigma keeps clusters apart; paper.md §5: too large a sigma merges them). Returns (rho~, clusters cut).
    """
    n_pts, edges = mst_edges(points.astype(np.float64), rng, max_points)
    if n_pts < 2:
        return math.nan, n_pts
    if len(edges) == 0:
        return math.nan, 1
    cut = min(max(1, n_clusters - 1), len(edges))
    return float(edges[cut - 1]), cut + 1


@register
class Chaining(Learner):
    """Layerwise random-features + ridge learner of the paper.

    The layers, the first-patch ridge, lambda = 1/|P_l|, the fresh stage sets and the printed Lemma-10 sigma rule
    are the paper's; four defaults depart from it, each measured in docs/paper_fidelity.md: eps_o = 1e-3 (Lemma
    17's is ~1e-11: eps_o="paper"), rho~ above the bottom measured on the data (sigma="data"; the paper's proof
    uses rho^(l+1)/2: "oracle"), width M = 2048 (Lemma 10: ~1e24), and the given samples split N^(l) ∝ m^l
    rather than Theorem 7's N^(l) (callers such as `rhm train` also draw distinct inputs, not i.i.d.). The
    default solve is exact (solver="closed"), which the paper allows in place of GD.

    Parameters
    ----------
    s: the branching factor (patch size), known to the learner as in the paper; None: the grammar's s (fit
        with grammar=g), required otherwise.
    width: M, the number of random Fourier pairs per layer (features are 2M-dimensional).
    sigma: RF bandwidth rule per layer. One formula, Lemma 10's sigma(rho~, eps_O) (`sigma_rule`), with
        rho~ the inter-cluster separation of the layer's input embeddings (Assumption 9b) from one of these
        sources: the bottom layer always has rho~ = sqrt(2) (one-hot tokens, exact); above it "data"
        (default) measures rho~ on the training embeddings by single linkage (the realised separation itself,
        about rho^(l+1) once the layer below fits q), "oracle" uses the lower bound rho^(l+1)/2 that the
        proof of Lemma 11 derives from the grammar's exact rho^(l+1) (measured: 0.5-0.85x "data"'s rho~;
        needs fit(..., grammar=g)). "theory": Theorem 7's sigma^(l) from rhm.theory (grammar's K_rho, kappa, the
        smallest valid C). "validate": the "data" value times the best of `sigma_grid` on a held-out split
        of each stage. A positive float: fixed.
    sigma_rule: "paper" (Lemma 10 as printed, sigma^2 = 2 rho~^2/log(2/eps_O)) or "corrected"
        (sigma^2 = rho~^2/(2 log(2/eps_O)), what the lemma's proof needs); see rhm.theory's docstring and
        docs/paper_fidelity.md for the measurement behind the default.
    sigma_scale: multiplier applied to sigma in every mode.
    eps_o: near-orthogonality target eps_O of Lemma 10 in the "data"/"oracle" formula: a float (default 1e-3,
        a measured choice), or "paper": Lemma 17's eps_O^(l) = eps_*^(l)/(600 |P_l|^2 kappa sqrt(d_y)) from
        Theorem 7's schedule at the smallest valid C, with the grammar's kappa and K_rho under
        sigma="oracle" and data estimates otherwise (kappa = 1; K_rho = 1 at the bottom stage, then
        rho~ m^((l+1)/2) from the measured separation).
    solver: "closed" (exact ridge solution, primal or dual, whichever is smaller) or "gd" (full-batch GD
        from W = 0 with step 2/(1 + lambda), Lemma 15).
    gd_steps: number of GD steps (None: Lemma 17's |P| log(100 |P| sqrt(n_c) / 1e-3)).
    lam: ridge lambda; "paper" = 1/|P_l| per level: |P_l| = v m_hat for l >= 2 and n_classes m_hat at l = 1
        (the root's n_c symbols have m rules each), where v m_hat is the number of distinct input patches seen.
    samples: "fresh" (the paper: the P samples are split into disjoint stage sets with N^(l) ∝ m^l, m
        estimated from the data) or "reuse" (every stage sees all P samples). The rows are put in a canonical
        order and shuffled with `seed` before the split, so the row order of x does not change the fit.
    sigma_grid, val_fraction: candidates and held-out fraction for sigma="validate".
    guard: denominator guard of the normalisation (see module docstring).
    diagnostics: after each stage, when fit gets the grammar, measure the layer on fresh data (n_diag
        samples): ||h - q^(l)||, cluster spread/separation (Assumption 9), synonym purity.
    device, dtype, seed: torch device ("auto": cuda if available), feature dtype, seed of all draws.
    """

    name = "chaining"

    def __init__(self, s=None, width=2048, sigma="data", sigma_rule=theory.DEFAULT_SIGMA_RULE, sigma_scale=1.0,
                 eps_o=1e-3, solver="closed", gd_steps=None,
                 lam="paper", samples="fresh", sigma_grid=(0.25, 0.5, 1.0, 2.0, 4.0), val_fraction=0.2,
                 guard=0.05, diagnostics=True, n_diag=4000, device="auto", dtype="float32", seed=0):
        self.s = s
        self.width = width
        self.sigma = sigma
        self.sigma_rule = sigma_rule
        self.sigma_scale = sigma_scale
        self.eps_o = eps_o
        self.solver = solver
        self.gd_steps = gd_steps
        self.lam = lam
        self.samples = samples
        self.sigma_grid = sigma_grid
        self.val_fraction = val_fraction
        self.guard = guard
        self.diagnostics = diagnostics
        self.n_diag = n_diag
        self.device = device
        self.dtype = dtype
        self.seed = seed

    # ----------------------------------------------------------------------------------- validation
    def _validate_params(self):
        """Every hyperparameter through rhm.validation: one ValueError naming the parameter, value and rule."""
        check_int("width", self.width, 1)  # random Fourier pairs M
        _str_or_positive("sigma", self.sigma, SIGMA_MODES)
        check_choice("sigma_rule", self.sigma_rule, theory.SIGMA_RULES)
        _str_or_positive("eps_o", self.eps_o, ("paper",), maximum=2.0)  # log(2/eps_o) > 0
        _str_or_positive("lam", self.lam, ("paper",))
        for name in ("sigma_scale", "guard"):
            check_float(name, getattr(self, name), 0.0, strict=True)
        check_choice("solver", self.solver, SOLVERS)
        check_choice("samples", self.samples, SAMPLE_MODES)
        check_int("gd_steps", self.gd_steps, 1, none_ok=True)
        if not isinstance(self.sigma_grid, (list, tuple)) or not self.sigma_grid:
            raise ValueError(f"sigma_grid={self.sigma_grid!r} must be a non-empty list of positive numbers")
        for i, c in enumerate(self.sigma_grid):
            check_float(f"sigma_grid[{i}]", c, 0.0, strict=True)
        check_float("val_fraction", self.val_fraction, 0.0, strict=True, maximum=1.0)
        check_int("n_diag", self.n_diag, 1)
        check_int("seed", self.seed, 0)

    # --------------------------------------------------------------------------------------- layers
    def _phi(self, z: torch.Tensor) -> torch.Tensor:
        """RF features from pre-activations z = h Omega (..., M) -> (..., 2M), eq. (6)."""
        return torch.cat([torch.cos(z), torch.sin(z)], dim=-1) / math.sqrt(z.shape[-1])

    def _pre(self, level: int, h) -> torch.Tensor:
        """z = (h_1 ∘ ... ∘ h_s) Omega for patches: bottom tokens (B, P, s) ints, or embeddings (B, P, s, e)."""
        omega = self.omega_[level]
        if level == self.L_:  # one-hot tokens: h Omega is a sum of rows of Omega (exact lookup)
            om = omega.view(self.s_, self.v_, -1)
            z = om[0][h[..., 0]]
            for i in range(1, self.s_):
                z = z + om[i][h[..., i]]
            return z
        return h.reshape(*h.shape[:-2], -1) @ omega

    def _normalise(self, o: torch.Tensor) -> torch.Tensor:
        """Eq. (2) with the guard: o / (sign(<1,o>) max(|<1,o>|, guard))."""
        den = o.sum(-1, keepdim=True)
        sign = torch.where(den < 0, -1.0, 1.0).to(o.dtype)
        return o / (sign * den.abs().clamp_min(self.guard))

    def _layer(self, level: int, h) -> torch.Tensor:
        """Apply layer `level` to patches: returns normalised outputs (B, P, n_classes), chunked over B."""
        W = self.W_[level]
        rows = max(1, _CHUNK_ELEMS // max(1, h.shape[1] * 2 * self.width))
        outs = [self._normalise(self._phi(self._pre(level, h[a:a + rows])) @ W.T)
                for a in range(0, h.shape[0], rows)]
        return torch.cat(outs) if outs else torch.empty(0, h.shape[1], W.shape[0], device=W.device)

    def _embed(self, tokens: np.ndarray, top: int) -> torch.Tensor:
        """Level-`top` token embeddings (B, k, n_classes) of input tokens (B, k * s^(L-top)), top < L,
        running the trained layers L..top+1 on all their patches."""
        h = torch.as_tensor(tokens.astype(np.int64), device=self.device_).view(len(tokens), -1, self.s_)
        for level in range(self.L_, top, -1):
            out = self._layer(level, h)  # (B, P, n_c): the level-(level-1) tokens
            h = out if level - 1 == top else out.view(len(tokens), -1, self.s_, out.shape[-1])
        return h

    def _forward_levels(self, x: np.ndarray, keep: bool):
        """Full forward on all patches; returns top outputs (n, n_c) and, if keep, each layer's outputs."""
        h = torch.as_tensor(x.astype(np.int64), device=self.device_).view(len(x), -1, self.s_)
        hidden = []
        for level in range(self.L_, 0, -1):
            out = self._layer(level, h)  # (n, s^(level-1), n_c)
            if keep:
                hidden.append(out.reshape(len(x), -1).cpu().numpy())
            if level > 1:
                h = out.view(len(x), -1, self.s_, out.shape[-1])
        return out[:, 0, :], hidden

    # ------------------------------------------------------------------------------------------ fit
    def _fit(self, x, y):
        self._validate_params()
        t_start = time.perf_counter()
        self.device_ = resolve_device(self.device)
        self.dtype_ = resolve_dtype(self.dtype)
        s, self.L_ = self._tree_shape(self.s, x.shape[1])
        self.s_ = s
        L, v, n_c = self.L_, self.v_, self.n_classes_
        g = self.grammar_
        if self.sigma in ("oracle", "theory") and g is None:
            raise ValueError(f"sigma={self.sigma!r} uses the exact signal gaps: call fit(x, y, grammar=g)")
        if self.sigma in ("oracle", "theory") and not g.spec.is_classic:
            raise ValueError(f"sigma={self.sigma!r} uses the paper's schedule, which assumes the plain RHM "
                             f"(uniform rules, no noise); got {g!r}: use sigma='data' or 'validate'")
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)

        # canonical row order (lexicographic in (x, y)), then a seeded shuffle: the stage sets, the sigma
        # estimates and the validation splits depend on the multiset of rows and the seed, never on their order
        order = np.lexsort(np.column_stack([x, y]).T[::-1])
        order = order[np.random.default_rng(np.random.SeedSequence([self.seed, 104729])).permutation(len(x))]
        x, y = x[order], y[order]

        # |P_l| and m estimated from the data: v m_hat distinct input patches over all bottom positions (Vm when
        # all occur); every level below the root has v symbols with m rules, the root n_c symbols (|P_1| = n_c m)
        n_patches, m_hat = distinct_patches(x, s, v)
        if L == 1:  # the input patches are the root's: n_c m of them
            m_hat = max(1.0, n_patches / n_c)
        self.n_patches_ = {lv: (n_c * m_hat if lv == 1 else n_patches) for lv in range(1, L + 1)}
        lam = {lv: 1.0 / self.n_patches_[lv] if self.lam == "paper" else float(self.lam) for lv in range(1, L + 1)}
        self.lam_, self.m_hat_ = lam, m_hat

        # sample split across stages (fresh: N^(l) ∝ m^l, l = 1..L)
        n = len(x)
        if self.samples == "fresh":
            sizes = fresh_stage_sizes(n, m_hat, L, "samples='fresh'")
            bounds = np.cumsum([0] + [sizes[lv] for lv in range(L, 0, -1)])  # stage L first
            stage_rows = {L - i: slice(bounds[i], bounds[i + 1]) for i in range(L)}
        else:
            stage_rows = {lv: slice(0, n) for lv in range(1, L + 1)}
        self.info_["stage_samples"] = {str(lv): stage_rows[lv].stop - stage_rows[lv].start for lv in range(L, 0, -1)}
        self.info_["lam"], self.info_["m_hat"] = {str(k): v for k, v in lam.items()}, m_hat

        gaps = None
        if g is not None and g.spec.s0 and self.diagnostics:  # no first-patch statistics on sparse trees
            self.info_["diagnostics"] = "skipped: the oracle diagnostics are defined on the RHM tree, not a SparseRHM"
            g = None
        if g is not None and (g.spec.filter_level or g.spec.beta is not None) and self.diagnostics:
            # the oracle's q^(l) are those of the unfiltered, unambiguous RHM, not of this data (sigma='oracle'
            # is refused above for such grammars)
            what = "a filtered grammar" if g.spec.filter_level else "the soft grammar"
            self.info_["diagnostics"] = f"skipped: the oracle diagnostics are not defined for {what}"
            g = None
        if g is not None and (self.sigma in ("oracle", "theory") or self.diagnostics):
            from .. import oracle
            gaps = oracle.signal_gaps(g)
        if self.sigma in ("oracle", "theory"):
            flat = [lv for lv, r in gaps.rho.items() if not r > 0]
            if flat:
                raise ValueError(f"sigma={self.sigma!r} needs rho^(l) > 0, but this grammar has non-synonyms with "
                                 f"identical q at level(s) {flat} (Assumption 6b fails)")
        sched = None
        if self.sigma == "theory":
            if not math.isfinite(gaps.kappa):
                raise ValueError("sigma='theory' needs a finite kappa (Assumption 6a); this grammar has some "
                                 "rule patch that never occurs first")
            sched = theory.schedule(g.v, g.m, g.s, g.L, kappa=gaps.kappa, K_rho=gaps.K_rho(g.m),
                                    sigma_rule=self.sigma_rule)

        self.omega_, self.W_, self.sigma_ = {}, {}, {}
        stages = {}
        for level in range(L, 0, -1):
            t0 = time.perf_counter()
            rows = stage_rows[level]
            xs, ys = x[rows], y[rows]
            width_in = v if level == L else n_c
            sub, inv = patch_ids(xs[:, : s ** (L - level + 1)], v, rows=True)  # distinct first subtrees
            counts = np.bincount(inv, minlength=len(sub)).astype(np.float64)
            hist = np.zeros((len(sub), n_c))
            np.add.at(hist, (inv, ys), 1.0)
            # first level-l patch of every distinct subtree: ints (u, 1, s) at the bottom, else (u, 1, s, n_c)
            if level == L:
                h = torch.as_tensor(sub.astype(np.int64), device=self.device_).view(len(sub), 1, s)
            else:
                with torch.no_grad():
                    h = self._embed(sub, level).view(len(sub), 1, s, n_c)
            rec = {"distinct_first_subtrees": int(len(sub))}
            noise = torch.randn(s * width_in, self.width, generator=gen, dtype=torch.float64)  # Omega * sigma
            sigma, rec_sigma = self._choose_sigma(level, h, noise, gaps, sched, rng, ys, inv)
            rec.update(rec_sigma)
            self.sigma_[level] = sigma
            self.omega_[level] = (noise / sigma).to(self.device_, self.dtype_)
            self.W_[level] = self._solve(level, h, counts, hist, len(xs), lam[level], rec)
            rec["seconds"] = time.perf_counter() - t0
            if g is not None and self.diagnostics:
                rec.update(self._diagnose(g, level, gaps))
            stages[str(level)] = rec
        self.info_["stages"] = stages
        self.info_["sigma"] = {str(k): v for k, v in self.sigma_.items()}
        self.info_["fit_seconds"] = time.perf_counter() - t_start

    # ----------------------------------------------------------------------------------------- sigma
    def _choose_sigma(self, level, h, noise, gaps, sched, rng, ys, inv):
        L, scale = self.L_, self.sigma_scale
        rec = {}
        if not isinstance(self.sigma, str):
            return float(self.sigma) * scale, {"sigma_rule": "fixed"}
        if self.sigma == "theory":
            return sched.sigma[level] * scale, {"sigma_rule": "theory"}
        if level == L:  # one-hot tokens: distinct tokens are exactly sqrt(2) apart
            rho_t = math.sqrt(2)
            rec["rho_tilde"] = rho_t
        elif self.sigma == "oracle":  # proof of Lemma 11: the realised separation is >= rho^(l+1)/2
            rho_t = gaps.rho[level + 1] / 2
            rec["rho_tilde"] = rho_t
        else:  # the realised separation (Assumption 9b's rho~), measured
            pts = h.reshape(-1, h.shape[-1]).detach().cpu().numpy()
            rho_t, k = separation_from_data(pts, self.v_, rng)
            if not math.isfinite(rho_t) or rho_t <= 0:
                raise ValueError(f"sigma='data' could not estimate the embedding separation at level {level}: "
                                 "the previous layer's outputs collapse to one point (too few samples?)")
            rec["rho_tilde"], rec["clusters_found"] = rho_t, k
        eps_o = self._eps_o(level, rho_t, gaps)
        sigma = theory.lemma10_sigma(rho_t, eps_o, self.sigma_rule) * scale
        rec["sigma_rule"], rec["lemma10_rule"], rec["eps_o"] = self.sigma, self.sigma_rule, eps_o
        if self.sigma == "validate":
            sigma, rec["validation"] = self._validate_sigma(level, h, noise, sigma, rng, ys, inv)
        return sigma, rec

    def _eps_o(self, level, rho_t, gaps) -> float:
        """eps_O of stage `level`: the float given, or Lemma 17's eps_*^(l)/(600 |P_l|^2 kappa sqrt(d_y)) on
        Theorem 7's schedule at the smallest valid C ("paper"; see the class docstring for the estimates)."""
        if self.eps_o != "paper":
            return float(self.eps_o)
        m, L, n_c = max(self.m_hat_, 1.5), self.L_, self.n_classes_
        if self.sigma == "oracle":
            kappa, K = gaps.kappa, gaps.K_rho(self.grammar_.m)
        else:  # data estimates: kappa = 1 (exact for the App.-B sampler); K_rho from the measured separation
            kappa, K = 1.0, (1.0 if level == L else rho_t * m ** ((level + 1) / 2))
        C = theory.smallest_C(n_c, m, self.s_, L, kappa, K) or 1.0
        eps_star = K * m ** (-level / 2) / math.sqrt(C * n_c**2 * m**2 * self.s_ * L * math.log(m))
        return theory.eps_O(eps_star, self.n_patches_[level], kappa, n_c)

    def _validate_sigma(self, level, h, noise, base, rng, ys, inv):
        """Pick base * c (c in sigma_grid) minimising the held-out ridge loss of stage `level`."""
        val = rng.random(len(ys)) < self.val_fraction
        if val.all() or not val.any():
            raise ValueError(f"sigma='validate' needs samples on both sides of the split at level {level}")
        counts = np.bincount(inv[~val], minlength=len(h)).astype(np.float64)
        hist = np.zeros((len(h), self.n_classes_))
        np.add.at(hist, (inv[~val], ys[~val]), 1.0)
        target = np.eye(self.n_classes_)[ys[val]]
        losses = {}
        for c in self.sigma_grid:
            self.omega_[level] = (noise / (base * c)).to(self.device_, self.dtype_)
            W = self._solve(level, h, counts, hist, int((~val).sum()), self.lam_[level], {})
            out = self._outputs(level, h, W)  # (u, n_c) per distinct subtree
            losses[c] = float(0.5 * ((target - out[inv[val]]) ** 2).sum(1).mean())
        best = min(losses, key=losses.get)
        return base * best, {"grid": {str(k): v for k, v in losses.items()}, "chosen": best}

    # ------------------------------------------------------------------------------------------ solve
    def _feature_chunks(self, level, h):
        """Yield (row slice, features (rows, 2M) in the model dtype) of the first patch of the distinct
        subtrees h, a chunk at a time, so no product with all rows is ever held in memory."""
        rows = max(1, _CHUNK_ELEMS // (2 * self.width))
        with torch.no_grad():
            for a in range(0, len(h), rows):
                yield slice(a, a + rows), self._phi(self._pre(level, h[a:a + rows]))[:, 0]

    def _outputs(self, level, h, W) -> np.ndarray:
        """Unnormalised outputs W x (u, n_c) for the first patch of every distinct subtree, chunked."""
        return torch.cat([X.double() @ W.double().T for _, X in self._feature_chunks(level, h)]).cpu().numpy()

    def _solve(self, level, h, counts, hist, n, lam, rec) -> torch.Tensor:
        """Ridge of eq. (3) on aggregated rows: min_W 1/(2n) sum_i ||e_y_i - W x_i||^2 + lam/2 ||W||^2.

        Rows j with count c_j and label histogram H_j give X^T X = sum c_j x_j x_j^T, X^T Y = sum x_j H_j^T,
        accumulated chunk by chunk (memory O((2M)^2 + chunk * 2M), never O(rows * 2M)). Gram products are in
        the model dtype (float32: 2x faster; C + lam I has condition number <= (1+lam)/lam, ~33 for lam = 1/32,
        so float32 accumulation costs ~1e-5 relative accuracy); solves are in float64.
        """
        D, u = 2 * self.width, len(h)
        dev = self.device_
        a = torch.as_tensor(counts / n, device=dev, dtype=self.dtype_)
        Hn = torch.as_tensor(hist / n, device=dev, dtype=self.dtype_)  # (u, n_c): a_j * mean label one-hot
        if self.solver == "gd" or D <= u:
            C = torch.zeros(D, D, device=dev, dtype=self.dtype_)  # E[x x^T]
            XtH = torch.zeros(D, Hn.shape[1], device=dev, dtype=self.dtype_)  # E[x e_y^T]
            for rows, X in self._feature_chunks(level, h):
                C += X.T @ (X * a[rows, None])
                XtH += X.T @ Hn[rows]
            C, XtH = C.double(), XtH.double()
            if self.solver == "gd":
                P = self.n_patches_[level]  # |P_l| estimate (Lemma 17: T >= |P| log(100 |P| kappa sqrt(d_y) / eps))
                steps = self.gd_steps or math.ceil(P * math.log(100 * P * math.sqrt(self.n_classes_) / 1e-3))
                eta = 2.0 / (1.0 + lam)
                B = XtH.T
                W = torch.zeros_like(B)
                for _ in range(steps):
                    W = W - eta * (W @ C + lam * W - B)
                rec.update(solver="gd", gd_steps=steps)
            else:  # primal: (C + lam I) W^T = E[x e_y^T]
                C.diagonal().add_(lam)
                W = torch.cholesky_solve(XtH, torch.linalg.cholesky(C)).T
                rec.update(solver="closed-primal")
        else:  # dual (u < 2M rows, so X is small): W^T = X^T A^(1/2) (A^(1/2) K A^(1/2) + lam I)^(-1) A^(1/2) Ybar
            X = torch.cat([X for _, X in self._feature_chunks(level, h)]).double()
            a, Hn = a.double(), Hn.double()
            sa = a.sqrt()
            K = (X * sa[:, None]) @ (X * sa[:, None]).T
            K.diagonal().add_(lam)
            rhs = Hn / sa[:, None]  # A^(1/2) Ybar: row j is sqrt(a_j) H_j / c_j = (H_j / n) / sqrt(a_j)
            alpha = torch.cholesky_solve(rhs, torch.linalg.cholesky(K))
            W = ((X * sa[:, None]).T @ alpha).T
            rec.update(solver="closed-dual")
        return W.to(self.dtype_)

    # ------------------------------------------------------------------------------------ diagnostics
    def _diagnose(self, g, level, gaps) -> dict:
        """Layer `level` on fresh data: ||h - q^(l)|| (Lemma 11), Assumption-9 spread/separation, purity."""
        from .. import oracle

        n = self.n_diag
        x, _, tree = g.sample(n, seed=np.random.SeedSequence([self.seed, 7919, level]), return_tree=True)
        st = oracle.patch_stats(g, level)
        with torch.no_grad():
            h = self._embed(x[:, : self.s_ ** (self.L_ - level + 1)], level - 1)
        out = (h[:, 0] if h.dim() == 3 else h.reshape(n, -1, self.n_classes_)[:, 0]).double().cpu().numpy()
        table, inv = patch_ids(st.patches, g.v)  # st.patches are distinct: st.patches[j] is table[inv[j]]
        pid = lookup(table, np.argsort(inv), tree[level][:, : self.s_], g.v)  # each sample's patch's row in st
        err = np.linalg.norm(out - st.q[pid], axis=1)
        per_patch = np.bincount(pid, weights=err, minlength=len(st.p)) / np.maximum(
            np.bincount(pid, minlength=len(st.p)), 1)
        seen = np.bincount(pid, minlength=len(st.p)) > 0
        parent = st.parents[pid]
        # Assumption 9 on the produced level-(l-1) embeddings, grouped by their true symbol
        sub = np.random.default_rng(level).choice(n, min(n, 1500), replace=False)
        P, lab = out[sub], parent[sub]
        d = np.sqrt(np.maximum(((P[:, None] - P[None]) ** 2).sum(-1), 0))
        same = lab[:, None] == lab[None]
        intra = float(d[same].max()) if same.any() else 0.0
        inter = float(d[~same].min()) if (~same).any() else math.inf
        # purity: each output assigned to the parent whose exact q is nearest
        par_ids, first_idx = np.unique(st.parents, return_index=True)
        Q = st.q[first_idx]
        nearest = par_ids[np.argmin(((out[:, None, :] - Q[None]) ** 2).sum(-1), axis=1)]
        return {"q_error_max": float(per_patch[seen].max()), "q_error_mean": float(per_patch[seen].mean()),
                "q_error_sample_max": float(err.max()), "rho_exact": float(gaps.rho[level]),
                "intra_spread": intra, "inter_separation": inter,
                "synonym_purity": float((nearest == parent).mean())}

    # ---------------------------------------------------------------------------------------- predict
    def _predict(self, x):
        with torch.no_grad():
            top, _ = self._forward_levels(x, keep=False)
        return top.argmax(-1).cpu().numpy()

    def hidden(self, x) -> list[np.ndarray]:
        """Normalised outputs of every layer, bottom first: k-th entry (n, s^(L-k) * n_classes)."""
        x = self._check_xy(x, fitting=False)
        with torch.no_grad():
            _, hidden = self._forward_levels(x, keep=True)
        return hidden
