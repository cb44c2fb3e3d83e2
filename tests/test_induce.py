"""The `induce` learner: grammar induction from unlabeled strings, exact inference on what it learned."""

import numpy as np
import pytest
from typer.testing import CliRunner

import rhm
from rhm import inference
from rhm.cli import app
from rhm.learners.induce import Induce, InducedGrammar, masked_kl, rules_recovered


def _fit(v, m, L, seed, P, **kw):
    g = rhm.RHM(v=v, m=m, s=2, L=L, seed=seed)
    x, _ = g.sample(P, seed=seed + 50)
    return g, Induce(**kw).fit(x, grammar=g)


# (v, m, L): every rule recovered in 3/3 design seeds from P = 200 (m <= 3) or 400 (m = 4) strings (v=8, m=4,
# L=3: from 200); P = 1000 here is a margin of >= 2.5x
@pytest.mark.parametrize("v, m, L, seed", [(4, 2, 2, 0), (4, 2, 3, 1), (6, 3, 2, 2), (6, 3, 3, 0), (8, 2, 3, 1),
                                           (8, 4, 2, 2), (8, 4, 3, 0), (8, 4, 3, 3)])
def test_recovers_every_rule(v, m, L, seed):
    g, model = _fit(v, m, L, seed, 1000)
    rec = rules_recovered(g, model.grammar_)
    assert rec["all"], rec
    assert model.grammar_.num_rules == [g.n_classes * m] + [v * m] * (L - 1)
    assert model.grammar_.num_inputs == g.num_inputs  # one root over all n_c m top-level tuples


def test_merge_undoes_a_split_symbol():
    g, model = _fit(8, 4, 3, 0, 1000, n_symbols=9)  # k-means must split one symbol per learned level
    assert model.info_["merges"] == 2 and model.grammar_.sizes == [1, 8, 8, 8]
    assert rules_recovered(g, model.grammar_)["all"]
    _, unmerged = _fit(8, 4, 3, 0, 1000, n_symbols=9, merge=False)
    assert unmerged.grammar_.sizes == [1, 9, 9, 8] and not rules_recovered(g, unmerged.grammar_)["all"]


@pytest.mark.parametrize("seed", [6, 17])  # a level-1 (seed 6) or level-2 (17) symbol that no rule above uses
def test_unreachable_symbols(seed):
    g, model = _fit(8, 2, 3, seed, 1000)
    rec = rules_recovered(g, model.grammar_)  # the unused symbol's rules occur in no string: not counted
    assert rec["all"], rec
    assert sum(model.grammar_.num_rules) == sum(len(r.reshape(-1, 2)) for r in g.rules) - 2


def test_grammar_runs_with_inference_and_kl_is_zero_when_recovered():
    g, model = _fit(8, 4, 3, 1, 1000)
    h = model.grammar_
    assert isinstance(h, rhm.spec.Grammar) and h.n_classes == 1 and h.d == g.d and h.vocab_size == 8
    xt, _ = g.sample(300, seed=7)
    assert np.isfinite(inference.log_likelihood(h, xt)).all()
    # the learned grammar's distribution is the true one: log P(x) agrees to rounding
    np.testing.assert_allclose(inference.log_likelihood(h, xt), inference.log_likelihood(g, xt), atol=1e-9)
    mask = np.random.default_rng(1).random(xt.shape) < 0.3
    post = inference.token_posterior(h, xt, mask)
    np.testing.assert_allclose(post.sum(-1), 1.0, atol=1e-12)
    assert masked_kl(g, h, xt, mask) < 1e-9
    xs, _ = h.sample(200, seed=3)  # its own strings are strings of the true grammar
    assert (g.parse(xs) >= 0).all() and (h.parse(xs) == 0).all()
    assert InducedGrammar.from_dict(h.to_dict()).num_rules == h.num_rules


def test_too_few_strings_are_measured_as_such():
    g, model = _fit(8, 4, 3, 0, 50)  # far below P* (~200): most rules unseen or merged wrongly
    rec = rules_recovered(g, model.grammar_)
    assert not rec["all"] and min(rec["per_level"]) < 0.9
    xt, _ = g.sample(200, seed=7)
    mask = np.random.default_rng(2).random(xt.shape) < 0.15
    kl = masked_kl(g, model.grammar_, xt, mask)  # contexts the learned rules cannot derive: smoothed, finite
    assert np.isfinite(kl) and kl > 0.1


def test_measures_tell_a_wrong_grammar():
    g, other = rhm.RHM(v=8, m=4, s=2, L=3, seed=0), rhm.RHM(v=8, m=4, s=2, L=3, seed=1)
    x, _ = other.sample(1000, seed=3)
    h = Induce().fit(x, grammar=other).grammar_
    rec = rules_recovered(g, h)
    assert not rec["all"] and max(rec["per_level"]) < 0.6
    xt, _ = g.sample(200, seed=7)
    assert masked_kl(g, h, xt, np.random.default_rng(2).random(xt.shape) < 0.15) > 1.0


def test_masked_and_next_token_tasks_through_exact_inference():
    from rhm.experiments.tasks import train_once

    g = rhm.RHM(v=8, m=4, s=2, L=3, seed=2)
    for task in ("masked", "next-token"):
        _, res = train_once(g, "induce", {}, 1000, 500, seed=0, objective=task)
        assert abs(res["lm"]["excess_cross_entropy"]) < 1e-9, (task, res["lm"])


def test_few_label_classification():
    g = rhm.RHM(v=8, m=4, s=2, L=3, seed=1)
    x, _ = g.sample(800, seed=1)  # every rule from 500 on held-out grammars (docs/induce.md)
    model = Induce().fit(x, grammar=g)
    xt, yt = g.sample(1000, seed=5)
    xl, yl = g.sample(300, seed=6)  # P(a top-level tuple unlabelled) = (31/32)^300 < 1e-4 each
    model.fit_labels(xl, yl, n_classes=8)
    assert model.score(xt, yt) == 1.0 and model.info_["labelled_tuples"] == 32
    assert model.predict_proba(xt).shape == (1000, 8)
    xs, ys = model.class_grammar_.sample(300, seed=2)  # the labelled grammar samples the true labels
    np.testing.assert_array_equal(g.parse(xs), ys)
    model.fit_labels(xl[:10], yl[:10], n_classes=8)  # few labels: the unlabelled tuples are guessed
    assert model.info_["labelled_tuples"] <= 10 and 0.125 < model.score(xt, yt) < 1.0
    model.fit_labels(xl, yl, n_classes=8)  # fit(x, y, task="classify") == fit(x) + fit_labels(x, y)
    both = Induce().fit(x, g.parse(x), grammar=g, task="classify")
    assert both.score(xt, yt) == 1.0
    with pytest.raises(ValueError, match="y must hold"):
        model.fit_labels(xl, yl[:-1])


def test_cli_masked():
    runner = CliRunner()
    r = runner.invoke(app, ["train", "--learner", "induce", "--task", "masked", "--v", "8", "--m", "4", "--L", "3",
                            "--train-size", "800", "--test-size", "300"])
    assert r.exit_code == 0, r.output
    assert "excess 0.0000" in r.output
    r = runner.invoke(app, ["train", "--learner", "induce", "--task", "next-token-all", "--v", "8", "--m", "4",
                            "--L", "3", "--train-size", "100", "--test-size", "100"])
    assert r.exit_code == 1 and "does not support task='next-token-all'" in r.output


@pytest.mark.parametrize("kw, fit_kw, msg", [
    ({}, {}, "s (the patch size) is unknown"),
    ({"s": 2, "n_symbols": "many"}, {}, "n_symbols='many'"),
    ({"s": 2, "em_iters": -1}, {}, "em_iters=-1"),
    ({"s": 2, "merge": 1}, {}, "merge=1 must be True or False"),
    ({"s": 2, "rule_probs": "zipf"}, {}, "rule_probs='zipf'"),
    ({"s": 2, "threshold": 0}, {}, "threshold=0"),
    ({"s": 2}, {"task": "next-token-all"}, "does not support task='next-token-all'"),
    ({"s": 3}, {}, "not a power of s=3"),
    ({"s": 2}, {"task": "classify"}, "y: task='classify' needs the labels"),
])
def test_bad_input(kw, fit_kw, msg):
    x, _ = rhm.RHM(v=8, m=4, s=2, L=3, seed=0).sample(50, seed=1)
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        Induce(**kw).fit(x, **fit_kw)


def test_bad_input_masks_and_measures():
    g = rhm.RHM(v=8, m=4, s=2, L=3, seed=0)
    x, _ = g.sample(300, seed=1)
    hidden = x.copy()
    hidden[0, 0] = 8  # a MASK token without its target
    with pytest.raises(ValueError, match="MASK"):
        Induce(s=2).fit(hidden, -np.ones(x.shape, dtype=np.int64), v=8, task="masked")
    h = Induce(s=2).fit(x).grammar_
    with pytest.raises(ValueError, match="mask must be"):
        masked_kl(g, h, x, np.zeros(x.shape, bool))
    with pytest.raises(ValueError, match="g_learned"):
        rules_recovered(rhm.RHM(v=8, m=4, s=2, L=2, seed=0), h)
    with pytest.raises(ValueError, match="replace=False"):
        h.sample(5, seed=0, replace=False)
    with pytest.raises(RuntimeError, match="not fitted"):
        Induce(s=2).predict_proba(x)
