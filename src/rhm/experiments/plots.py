"""Figures (matplotlib, Agg backend, PNG), each readable on its own: title, axis labels with units, legend.

Every function takes plain data (a pandas DataFrame of store rows, or dicts), writes one PNG and returns its path.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _tick_text(v: float) -> str:
    """Short tick labels that do not collide: 500, 2k, 50k, 2e8, 0.05."""
    if v <= 0:
        return ""
    if v >= 1e6 or v < 1e-3:
        mant, exp = f"{v:.0e}".split("e")
        return f"{mant}e{int(exp)}"
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def _log_ticks(ax, axes="x"):
    """Log axes with short labels at 1, 2, 5 × 10^k (at 10^k only when the axis spans more than 2.5 decades);
    call after plotting (the span decides)."""
    from matplotlib import ticker

    for name in axes:
        axis = ax.xaxis if name == "x" else ax.yaxis
        lo, hi = ax.get_xlim() if name == "x" else ax.get_ylim()
        wide = lo > 0 and hi / lo > 10**2.5
        axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0,) if wide else (1.0, 2.0, 5.0)))
        axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: _tick_text(v)))
        axis.set_minor_formatter(ticker.NullFormatter())


def _grammar_label(r) -> str:
    """The grammar spec's label of a store row (every non-default field shown: zipf, noise, s0, seed, ...)."""
    return _spec(r).label


def _set_label(r) -> str:
    """The label of a row's parameter set: its grammar spec without the seed."""
    return _spec(r).replace(seed=0).label


_LINESTYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "D", "v", "P")


def _grammar_styles(rows) -> dict:
    """A style per grammar: colour per parameter set (v, m, L, n_c, variant; ordered by n_c·m^L, from a
    sequential map so no two sets share a colour), line style and marker per grammar seed within the set."""
    plt = _plt()
    sets, seeds = {}, {}
    for r in rows:
        spec = _spec(r)
        k = _set_label(r)
        sets.setdefault(k, spec.nc_m_L)
        seeds.setdefault(k, [])
        if spec.seed not in seeds[k]:
            seeds[k].append(spec.seed)
    order = sorted(sets, key=lambda k: (sets[k], k))
    cmap = plt.get_cmap("viridis" if len(order) > 10 else "tab10")
    colours = {k: cmap(i / max(1, len(order) - 1) * 0.9) if len(order) > 10 else cmap(i) for i, k in enumerate(order)}
    out = {}
    for k in order:
        for j, seed in enumerate(sorted(seeds[k], key=lambda x: (x is None, x))):
            out[(k, seed)] = {"color": colours[k], "ls": _LINESTYLES[j % 4], "marker": _MARKERS[j % 6]}
    return out


def _style_of(styles, r) -> dict:
    return styles[(_set_label(r), _spec(r).seed)]


def _grammar_legend(styles, curves_rows, extra: dict | None = None) -> tuple[dict, str]:
    """Legend entries for the grammars of a figure: one per grammar when there are at most 14, else one per
    parameter set (colour) plus one per line style (the k-th grammar seed of a set). Returns (entries, title)."""
    from matplotlib.lines import Line2D

    rows = list({_grammar_label(r): r for r in curves_rows}.values())
    out = {}
    if len(rows) <= 14:
        for r in rows:
            st = _style_of(styles, r)
            out[_grammar_label(r)] = Line2D([], [], ms=3, lw=1.2, **st)
        title = "grammar"
    else:
        n_seeds = 0
        for r in rows:
            st = _style_of(styles, r)
            out.setdefault(_set_label(r), Line2D([], [], color=st["color"], marker="o", ms=3, lw=1.2))
            n_seeds = max(n_seeds, sum(1 for q in rows if _set_label(q) == _set_label(r)))
        for j in range(n_seeds):
            out[f"grammar seed #{j + 1} of a set"] = Line2D([], [], color="k", ls=_LINESTYLES[j % 4],
                                                             marker=_MARKERS[j % 6], ms=3, lw=1.0)
        title = "colour: grammar; style: its seed"
    out.update(extra or {})
    return out, title


def _legend_right(fig, handles_labels: dict, title: str | None = None):
    """One legend for the whole figure, right of the panels (never over the data); labels deduplicated."""
    if not handles_labels:
        return
    n = len(handles_labels)
    fig.legend(list(handles_labels.values()), list(handles_labels), loc="center left", bbox_to_anchor=(1.0, 0.5),
               fontsize=7 if n <= 20 else 6, ncol=1 if n <= 22 else 2, title=title, title_fontsize=7,
               frameon=False)


def _spec(r):
    from .config import grammar_key

    return grammar_key(r)


def _bayes_curve(gdf):
    """Mean Bayes error of the test sets per training size (noisy grammars), or None."""
    if "metrics" not in gdf:
        return None
    b = gdf["metrics"].map(lambda mt: mt.get("bayes_test_error") if isinstance(mt, dict) else None)
    if b.isna().all():
        return None
    m = b.groupby(gdf["train_size"]).mean()
    return m.index.to_numpy(float), m.to_numpy(float)


def _save(fig, path) -> Path:
    path = Path(path)
    fig.tight_layout()
    title = getattr(fig, "_suptitle", None)  # tight_layout leaves no room for it: put it above the axes
    if title is not None:
        title.set(y=1.0, va="bottom")
    fig.savefig(path, dpi=110, bbox_inches="tight")  # keeps a legend placed right of the axes
    _plt().close(fig)
    return path


def _curve(df):
    """Mean and std of test error over seeds per training size: (sizes, mean, std)."""
    g = df.groupby("train_size")["test_error"]
    m, s = g.mean(), g.std(ddof=0).fillna(0.0)
    return m.index.to_numpy(float), m.to_numpy(), s.to_numpy()


def _learner_panels(df):
    """One panel per learner: (fig, [(ax, label, [(first row, P, mean, std) per grammar])], styles)."""
    plt = _plt()
    labels = sorted(df["label"].unique())
    fig, axes = plt.subplots(1, len(labels), figsize=(4.4 * len(labels), 3.6), squeeze=False, sharey=True)
    panels = []
    for ax, lab in zip(axes[0], labels):
        sub = df[df["label"] == lab]
        from .config import by_grammar

        # one curve per full grammar spec (a zipf / noise / s0 grid on one grammar gives one curve each)
        curves = [(gdf.iloc[0], *_curve(gdf)) for _, gdf in by_grammar(sub)] if len(sub) else []
        panels.append((ax, lab, curves))
    styles = _grammar_styles([r for _, _, curves in panels for r, *_ in curves])
    return fig, panels, styles


def _finish_panel(ax, xlabel: str, title: str, ymax: float):
    ax.set_xscale("log")
    _log_ticks(ax, "x")
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.set_ylim(-0.02, ymax)
    ax.grid(alpha=0.3)


def learning_curves(df, path, title: str) -> Path:
    """Test error vs training size P (log x), one panel per learner, one line per grammar (colour: grammar
    parameters, line style: grammar seed), the P* threshold of each n_c dotted; legend right of the panels."""
    fig, panels, styles = _learner_panels(df)
    for ax, lab, curves in panels:
        for nc in sorted({int(r["n_classes"]) for r, *_ in curves}):
            ax.axhline(0.1 * (1 - 1 / nc), color="grey", ls=":", lw=0.9)
        for r, P, mu, sd in curves:
            st = _style_of(styles, r)
            ax.plot(P, mu, ms=3, lw=1.2, **st)
            ax.fill_between(P, np.clip(mu - sd, 0, 1), np.clip(mu + sd, 0, 1), color=st["color"], alpha=0.12)
            bayes = _bayes_curve(_rows_of(df, lab, r))
            if bayes is not None:  # noisy grammar: the excess over the Bayes error is the gap to this line
                ax.plot(*bayes, color=st["color"], ls=(0, (1, 3)), lw=1.0)
        _finish_panel(ax, "training set size P (samples)", lab, 1.0)
    panels[0][0].set_ylabel("test error (mean ± sd over seeds)")
    fig.suptitle(title, fontsize=11)
    from matplotlib.lines import Line2D

    legend, ltitle = _grammar_legend(styles, [r for _, _, curves in panels for r, *_ in curves],
                                     {"P* threshold 0.1·(1−1/n_c)": Line2D([], [], color="grey", ls=":", lw=0.9)})
    _legend_right(fig, legend, ltitle)
    return _save(fig, path)


def _rows_of(df, label, r):
    """The rows of learner `label` on the grammar (the full spec) of row r."""
    sub = df[df["label"] == label]
    key = _spec(r).key
    return sub[sub.apply(lambda row: _spec(row).key == key, axis=1)] if len(sub) else sub


def collapse(df, path, title: str) -> Path:
    """Test error vs P / (n_c m^L): curves of different grammars fall on one curve when P* ∝ n_c m^L."""
    fig, panels, styles = _learner_panels(df)
    thr = None
    for ax, lab, curves in panels:
        for r, P, mu, _ in curves:
            ax.plot(P / r["nc_m_L"], mu / (1 - 1 / r["n_classes"]), ms=3, lw=1.2, **_style_of(styles, r))
        thr = ax.axhline(0.1, color="k", ls=":", lw=0.8)
        ax.axvline(1.0, color="grey", ls="--", lw=0.8)
        _finish_panel(ax, "P / (n_c · m^L)  (dimensionless)", lab, 1.15)
    panels[0][0].set_ylabel("test error / chance error")
    fig.suptitle(title, fontsize=11)
    legend, ltitle = _grammar_legend(styles, [r for _, _, curves in panels for r, *_ in curves],
                                     {"P* threshold (10% of chance)": thr})
    _legend_right(fig, legend, ltitle)
    return _save(fig, path)


def pstar_scaling(points: list[dict], fits: dict, path, title: str, xlabel: str = "n_c · m^L",
                  identity: bool = True, ylabel: str = "P* (samples to 10% of chance error)") -> Path:
    """P* vs a scale x (log-log) per learner with bootstrap CIs, fitted power laws and (identity) the line P* = x;
    the legend right of the axes.

    points: dicts with label, x, pstar, lo, hi, censored; fits: label -> ScalingFit.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.0, 4.0))
    xs_all = []
    for i, lab in enumerate(sorted({p["label"] for p in points})):
        pts = [p for p in points if p["label"] == lab and p["pstar"] is not None and math.isfinite(p["pstar"])
               and math.isfinite(p["x"])]
        if not pts:
            continue
        color = f"C{i}"
        x = np.array([p["x"] for p in pts], float)
        y = np.array([p["pstar"] for p in pts], float)
        lo = np.array([p["lo"] if p["lo"] is not None and math.isfinite(p["lo"]) else p["pstar"] for p in pts])
        hi = np.array([p["hi"] if p["hi"] is not None and math.isfinite(p["hi"]) else p["pstar"] for p in pts])
        ax.errorbar(x, y, yerr=[np.maximum(y - lo, 0), np.maximum(hi - y, 0)], fmt="o", color=color, capsize=3,
                    label=f"{lab} (P* ± 95% CI)")
        xs_all.extend(x.tolist())
        fit = fits.get(lab)
        if fit is not None:
            xx = np.geomspace(x.min() / 1.3, x.max() * 1.3, 50)
            ax.plot(xx, fit.prefactor * xx**fit.slope, "-", color=color, lw=1,
                    label=f"fit: P* = {fit.prefactor:.3g}·x^{fit.slope:.2f}")
    if xs_all and identity:
        xx = np.geomspace(min(xs_all) / 1.3, max(xs_all) * 1.3, 50)
        ax.plot(xx, xx, "k--", lw=0.8, label="y = x (slope 1)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_ticks(ax, "xy")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return _save(fig, path)


def signal_gaps(rows: list[dict], path, title: str) -> Path:
    """ρ^(l) against m^(-l/2) over random grammars (log-log), one colour per level, with the line ρ = m^(-l/2)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 4.4))
    by_level: dict[int, list] = {}
    for r in rows:
        for lv, rho in r["rho"].items():
            if rho is not None and rho > 0:
                by_level.setdefault(int(lv), []).append((r["m"] ** (-int(lv) / 2), rho))
    allx = []
    for lv in sorted(by_level):
        pts = np.array(by_level[lv])
        allx.extend(pts[:, 0].tolist())
        ax.scatter(pts[:, 0], pts[:, 1], s=14, alpha=0.7, label=f"level l={lv}")
    if allx:
        xx = np.geomspace(min(allx) / 1.5, max(allx) * 1.5, 20)
        ax.plot(xx, xx, "k--", lw=0.8, label="ρ = m^(−l/2)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_ticks(ax, "xy")
    ax.set_xlabel("m^(−l/2)  (dimensionless)")
    ax.set_ylabel("signal gap ρ^(l) (exact, oracle)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return _save(fig, path)


def sensitivity_curves(series: list[dict], path, title: str) -> Path:
    """Synonymic sensitivity vs P/(n_c m^L): one panel per synonym level, one line per layer and grammar.

    series: dicts with grammar (label), level, layer, x (list), y (list), plus optional err_x/err_y (test error).
    """
    plt = _plt()
    levels = sorted({s["level"] for s in series})
    n = max(1, len(levels))
    fig, axes = plt.subplots(1, n, figsize=(4.4 * n, 3.6), squeeze=False, sharey=True)
    grammars = list(dict.fromkeys(s["grammar"] for s in series))
    cmap = plt.get_cmap("tab10")
    colour = {g: cmap(i % 10) for i, g in enumerate(grammars)}
    legend = {}
    for ax, lv in zip(axes[0], levels):
        for s in [s for s in series if s["level"] == lv]:  # colour: grammar; line style: layer
            line, = ax.plot(s["x"], s["y"], color=colour[s["grammar"]], ls=_LINESTYLES[(s["layer"] - 1) % 4],
                            marker="o", ms=3, lw=1.2)
            legend.setdefault(s["grammar"], line)
        errs = {s["grammar"]: (s.get("err_x"), s.get("err_y")) for s in series if s["level"] == lv and s.get("err_x")}
        for gname, (ex, ey) in errs.items():
            ax.plot(ex, ey, color=colour[gname], ls=(0, (1, 2)), lw=0.9, alpha=0.7)
        ax.axvline(1.0, color="grey", ls="--", lw=0.8)
        ax.set_xscale("log")
        _log_ticks(ax, "x")
        ax.set_xlabel("P / (n_c · m^L)  (dimensionless)")
        ax.set_title(f"synonyms exchanged at level {lv}", fontsize=10)
        ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    for k in sorted({s["layer"] for s in series}):
        legend[f"hidden layer {k}"] = Line2D([], [], color="k", ls=_LINESTYLES[(k - 1) % 4])
    legend["test error / chance (thin dotted)"] = Line2D([], [], color="k", ls=(0, (1, 2)), lw=0.9)
    axes[0][0].set_ylabel("sensitivity S (1 = not invariant)")
    fig.suptitle(title, fontsize=11)
    _legend_right(fig, legend, "colour: grammar")
    return _save(fig, path)


def bars(labels, values, path, title: str, ylabel: str, log: bool = True, errs=None) -> Path:
    """A bar chart of one number per label (e.g. P* per learner)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(labels) + 2), 3.8))
    vals = [v if v is not None and math.isfinite(v) else np.nan for v in values]
    ax.bar(range(len(labels)), vals, color=[f"C{i}" for i in range(len(labels))],
           yerr=errs if errs is not None else None, capsize=3)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=20, fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def fraction_figure(curves: dict, path, xlabel: str, ylabel: str, title: str, legend_title=None,
                    ratio_ticks: bool = False):
    """Fraction of held-out grammars meeting a criterion vs P (log x), one line per key of `curves` ({label: (x,
    fraction)}), a dotted line at 1/2 where P*_1/2 is read, legend right of the axes (SS1, FG2). `ratio_ticks`: x is
    a ratio (P / a formula), labelled plainly at powers of two instead of 10^x at every minor tick."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    markers = "osD^v<>"
    for k, (label, (x, frac)) in enumerate(curves.items()):
        ax.plot(x, frac, marker=markers[k % len(markers)], color=f"C{k}", label=label, lw=1.6)
    ax.axhline(0.5, color="0.5", ls=":", lw=1)
    ax.set_xscale("log")
    if ratio_ticks:
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

        lo, hi = ax.get_xlim()
        ax.xaxis.set_major_locator(FixedLocator([2.0**k for k in range(-8, 9) if lo <= 2.0**k <= hi]))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _: f"{t:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, title=legend_title)
    return _save(fig, path)
