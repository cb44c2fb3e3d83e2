"""Online training of the torch learners on rhm.data.RHMStream (fit_stream, train_once(online=True), rhm train
--online, sweeps' extras.online): the task targets are built per batch, nothing is stored."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import rhm
from rhm import lm_tasks
from rhm.data import RHMStream
from rhm.experiments import GrammarGrid, LearnerSpec, Sizes, Sweep
from rhm.experiments.sweep import SweepError
from rhm.learners import get

SEEDS = (0, 1, 2)
ADAM = dict(width=64, optimizer="adam", lr=3e-3, weight_decay=0.0, parametrization="standard")


pytestmark = pytest.mark.usefixtures("one_thread")


class CountingGrammar:
    """A grammar that records the size of every draw (delegates everything else)."""

    def __init__(self, g):
        self.g, self.draws = g, []

    def sample(self, n, seed, **kw):
        self.draws.append(n)
        return self.g.sample(n, seed=seed, **kw)

    def __getattr__(self, name):
        return getattr(self.g, name)


@pytest.mark.parametrize("seed", SEEDS)
def test_online_lcn_classifies_a_small_grammar(seed):
    g = rhm.RHM(4, 2, 2, 2, seed=seed)  # v = n_c = 4, m = 2, s = 2, L = 2: 64 distinct inputs
    model = get("lcn")(seed=seed, **ADAM).fit_stream(RHMStream(g, 32, seed=seed), max_steps=600)
    x, y = g.sample(500, seed=100 + seed)
    assert model.score(x, y) >= 0.95  # measured 1.0 on these seeds (0.97-1.0 after 300 steps)


@pytest.mark.parametrize("seed", SEEDS)
def test_online_transformer_next_token_near_bayes(seed):
    g = rhm.RHM(4, 2, 2, 2, seed=seed)
    stream = RHMStream(g, 32, seed=seed, task="next-token")
    model = get("transformer")(width=32, heads=2, seed=seed).fit_stream(stream, max_steps=400)
    test = lm_tasks.sample(g, "next-token", 500, seed=100 + seed)
    ev = lm_tasks.evaluate(g, test, model.predict_proba(test.x))
    # measured after 300 steps: accuracy within 0.03 of the Bayes predictor's, excess cross-entropy 0.05-0.07 nats
    assert ev["accuracy"] >= ev["bayes_accuracy"] - 0.05 and ev["excess_cross_entropy"] < 0.15


@pytest.mark.parametrize("name,task", [("cnn", "next-token"), ("transformer", "masked"),
                                       ("transformer", "next-token-all"), ("lcn", "classify")])
def test_stream_is_drawn_batch_by_batch_never_stored(name, task):
    g = CountingGrammar(rhm.RHM(4, 2, 2, 2, seed=0))
    stream = RHMStream(g, 16, seed=1, task=task, mask_rate=0.3)  # unbounded: only max_steps ends the fit
    model = get(name)(width=16, **({"heads": 2} if name == "transformer" else {})).fit_stream(stream, max_steps=25)
    assert g.draws == [16] * 25  # one fresh batch per step, nothing more
    assert model.info_["steps"] == 25 and model.info_["samples_seen"] == 400 and model.info_["online"]
    assert len(model.info_["train_loss_history"]) == 1


def test_stream_length_sets_the_steps_and_same_seed_same_fit():
    g = rhm.RHM(4, 2, 2, 2, seed=0)
    fits = [get("transformer")(width=16, heads=2, dropout=0.1, seed=s).fit_stream(
        RHMStream(g, 8, seed=3, n_batches=30, task="masked")) for s in (0, 0, 1)]
    assert fits[0].info_["steps"] == 30 and fits[0].info_["stopped"] == "max_steps"
    x = lm_tasks.sample(g, "masked", 50, seed=9).x
    p = [f.predict_proba(x) for f in fits]
    assert np.array_equal(p[0], p[1]) and not np.allclose(p[0], p[2])
    short = get("cnn")(width=8).fit_stream(RHMStream(g, 8, seed=3, n_batches=5), max_steps=20)
    assert short.info_["steps"] == 5 and short.info_["stopped"] == "stream_exhausted"


@pytest.mark.parametrize("seed", SEEDS)
def test_stream_batches_match_the_task(seed):
    g = rhm.RHM(4, 2, 2, 2, seed=seed)
    ids = RHMStream(g, 64, seed=5 + seed, n_batches=2, task="masked", mask_rate=0.4, tokens=True)
    onehot = RHMStream(g, 64, seed=5 + seed, n_batches=2, task="masked", mask_rate=0.4)
    for (x, y), (oh, y2), b in zip(ids, onehot, ids.task_batches()):
        assert torch.equal(y, y2) and np.array_equal(x.numpy(), b.x)
        hidden = x == g.v
        assert torch.equal(hidden, y >= 0) and 0.2 < hidden.float().mean() < 0.6
        assert oh.shape == (64, g.v, g.d) and torch.equal(oh.sum(1) == 0, hidden)  # MASK: a zero column
        assert torch.equal(oh.argmax(1)[~hidden], x[~hidden])
    x, y = next(iter(RHMStream(g, 10, seed=0, task="next-token", tokens=True)))
    assert (x[:, -1] == g.v).all() and y.shape == (10,)


def test_bad_online_requests_refused():
    g = rhm.RHM(4, 2, 2, 2, seed=0)
    with pytest.raises(ValueError, match="stream must be an rhm.data.RHMStream"):
        get("cnn")().fit_stream(g.sample(10, seed=0))
    with pytest.raises(ValueError, match="learner 'cnn' does not support task='masked'"):
        get("cnn")().fit_stream(RHMStream(g, 8, seed=0, task="masked"))
    with pytest.raises(ValueError, match="fit_stream needs a number of steps"):
        get("cnn")(max_steps=None).fit_stream(RHMStream(g, 8, seed=0))
    with pytest.raises(ValueError, match="task="):
        RHMStream(g, 8, seed=0, task="nope")
    with pytest.raises(ValueError, match="mask_rate"):
        RHMStream(g, 8, seed=0, task="masked", mask_rate=0.0)
    with pytest.raises(TypeError, match="unbounded"):
        len(RHMStream(g, 8, seed=0))
    for kw, rule in ((dict(n_batches=True), "n_batches=True must be an integer"),
                     (dict(n_batches=-1), "n_batches=-1 must be >= 0"), (dict(seed=-2), "seed=-2 must be >= 0"),
                     (dict(batch_size=2.5), "batch_size=2.5 must be an integer"),
                     (dict(channels_first=1), "channels_first=1 must be True or False"),
                     (dict(tokens="yes"), "tokens='yes' must be True or False"),
                     (dict(dtype=torch.int64), "dtype=torch.int64 must be a floating torch dtype")):
        with pytest.raises(ValueError, match=rule):
            RHMStream(g, **{"batch_size": 8, "seed": 0, **kw})
    with pytest.raises(ValueError, match="must be a grammar"):
        RHMStream(g.sample(10, seed=0), 8, seed=0)


def test_stream_keeps_no_state_and_splits_its_batches_between_dataloader_workers():
    """Every iteration restarts from the seed; with two DataLoader workers the n_batches batches are split
    between two independent child streams (no batch repeated, none lost), the same at every epoch."""
    g = rhm.RHM(4, 2, 2, 2, seed=0)
    stream = RHMStream(g, 16, seed=4, n_batches=6, task="next-token-all", tokens=True)
    first, again = list(stream), list(stream)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert not hasattr(stream, "batches_drawn")
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2)
    epochs = [[x for x, _ in loader] for _ in range(2)]
    assert len(epochs[0]) == 6 and all(torch.equal(a, b) for a, b in zip(*epochs))
    assert len({x.numpy().tobytes() for x in epochs[0]}) == 6


def test_online_in_train_once_cli_and_sweeps():
    from typer.testing import CliRunner

    from rhm.cli import app
    from rhm.experiments.tasks import execute, train_once

    g = rhm.RHM(4, 2, 2, 2, seed=0)
    model, res = train_once(g, "transformer", dict(width=16, heads=2, batch_size=32), 100, 50, seed=0,
                            objective="next-token", online=True)
    assert model.info_["steps"] == 4 and model.info_["samples_seen"] == 128  # ceil(100 / 32) batches
    assert res["lm"]["n_targets"] == 50
    args = ["train", "--v", "4", "--m", "2", "--L", "2", "--train-size", "64", "--test-size", "20", "--json"]
    out = CliRunner().invoke(app, args + ["--learner", "lcn", "--width", "8", "--online"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["samples_seen"] == 64 and json.loads(out.stdout)["sampling"] == "stream"
    out = CliRunner().invoke(app, args + ["--learner", "chaining", "--online"])
    assert out.exit_code != 0 and "learner 'chaining' cannot train online" in out.output
    masked = args + ["--learner", "transformer", "--width", "16", "--hp", "heads=2", "--task", "masked"]
    out = CliRunner().invoke(app, masked + ["--online", "--train-mask-rate", "0.3", "--mask-draws", "2"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    assert got["stream_mask_draws"] == 2 and got["stream_mask_rate"] == got["train_mask_rate"] == 0.3
    for extra, rule in ((["--mask-draws", "2"], "--mask-draws 2 applies to --task masked with --online only"),
                        (["--online", "--mask-draws", "0"], "--mask-draws=0 must be >= 1"),
                        (["--online", "--train-mask-rate", "x"], "--train-mask-rate x: must be a probability")):
        out = CliRunner().invoke(app, masked + extra)
        assert out.exit_code != 0 and rule in out.output, out.output
    sweep = Sweep(name="online", grammars=[GrammarGrid(v=4, m=2, s=2, L=2)], learners=[LearnerSpec(
        "cnn", params={"width": 8})], sizes=Sizes(unit="samples", values=[32]), test_size=16,
        extras={"online": True})
    row = execute(sweep.expand()[0].to_dict())
    assert row["info"]["online"] and row["info"]["samples_seen"] == 32
    # an online run's test strings are fresh i.i.d. draws, so the P_max // 2 cap of distinct test inputs (16 of this
    # grammar's 32) does not apply: the sweep scores the test_size it asks for
    sweep.objective, sweep.test_size = "next-token", 50
    (cfg,) = sweep.expand()
    assert cfg.test_size == 50 and execute(cfg.to_dict())["metrics"]["n_targets"] == 50
    sweep.extras = {}
    assert sweep.expand()[0].test_size == 16
    for kw, rule in ((dict(online="yes"), "online='yes' must be True or False"),
                     (dict(online=True, sampling="nope"), "sampling='nope'"),
                     (dict(online=True, params=dict(batch_size=0)), "batch_size=0 must be >= 1")):
        kw = {"params": dict(width=8), **kw}
        with pytest.raises(ValueError, match=rule):
            train_once(g, "cnn", kw.pop("params"), 32, 16, seed=0, **kw)
    with pytest.raises(SweepError, match="learner 'chaining' cannot train online"):
        Sweep(name="x", grammars=[GrammarGrid(v=4, m=2, s=2, L=2)], learners=["chaining"],
              sizes=Sizes(unit="samples", values=[32]), extras={"online": True}).validate()
