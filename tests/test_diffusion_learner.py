"""The diffusion learner (rhm.learners.diffusion): it learns a tiny grammar, samples reproducibly, validates."""

import numpy as np
import pytest

import rhm
from rhm.data import RHMStream
from rhm.oracle import validity

Diffusion = rhm.learners.get("diffusion")


@pytest.fixture(scope="module")
def tiny():
    # v = 4, m = 2, L = 3: 512 of the 4^8 = 65,536 strings are valid, so a uniform random string is a string of
    # the grammar with probability 512 / 65536 = 0.0078
    return rhm.RHM(v=4, m=2, s=2, L=3, seed=0)


def test_registered_and_listed():
    assert "diffusion" in rhm.learners.names()
    assert Diffusion.defaults()["sample_steps"] is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_strings_beat_random_by_a_margin(tiny, seed):
    x, _ = tiny.sample(300, seed=10 + seed)
    model = Diffusion(width=32, max_steps=400, device="cpu", seed=seed).fit(x, grammar=tiny)
    gen = validity(tiny, model.sample(400, seed=seed)).strings
    rand = tiny.num_inputs / tiny.v ** tiny.d
    # margins: at least 8x the random rate of full strings (0.0625; measured 0.17-0.18 over these seeds), and
    # 4x the random rate 0.5^4 = 0.0625 of strings whose 4 bottom patches are all rules (0.25; measured 0.34-0.43)
    assert gen[1] >= 8 * rand, gen
    assert gen[3] >= 4 * 0.5**4, gen
    # the ELBO is a bound on the model's NLL: above the grammar's entropy per token up to Monte Carlo noise
    # (0.1 nats), and far below a uniform model's log v
    nll = model.nll_bound(x[:200], n_draws=4).mean()
    assert np.log(tiny.num_inputs) / tiny.d - 0.1 < nll < np.log(tiny.v) - 0.1


def test_sample_reproducible_and_shaped(tiny):
    x, _ = tiny.sample(100, seed=1)
    model = Diffusion(width=16, depth=1, max_steps=20, device="cpu").fit(x, grammar=tiny)
    a, b = model.sample(50, seed=7), model.sample(50, seed=7)
    assert a.shape == (50, tiny.d) and a.dtype == np.uint8 and a.max() < tiny.v
    assert (a == b).all()
    assert not (a == model.sample(50, seed=8)).all()
    assert model.predict_proba(np.full((3, tiny.d), tiny.v)).shape == (3, tiny.d, tiny.v)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_patch_attention_learns_the_tiny_grammar(tiny, seed):
    # the level-aligned denoiser (patch = s, depth = L), same data and budget as the test above. Measured over
    # these seeds: valid strings 0.25-0.35 (full attention, depth 2: 0.17-0.18), bottom patches all rules
    # 0.66-0.68 (full attention 0.34-0.43); margins 0.2 and 0.5, both above what full attention reaches
    x, _ = tiny.sample(300, seed=10 + seed)
    model = Diffusion(width=32, depth=3, patch=2, max_steps=400, device="cpu", seed=seed).fit(x, grammar=tiny)
    masks = model.net_.masks  # block i attends within aligned windows of 2**(i+1) positions
    assert masks.shape == (3, 8, 8) and masks[0].sum() == 8 * 2 and masks[1].sum() == 8 * 4 and masks[2].all()
    gen = validity(tiny, model.sample(400, seed=seed)).strings
    assert gen[1] >= 0.2 and gen[3] >= 0.5, gen


def test_fit_stream(tiny):
    model = Diffusion(width=16, depth=1, batch_size=32, device="cpu").fit_stream(RHMStream(tiny, 32, seed=0),
                                                                                max_steps=30, log_every=10)
    assert model.info_["steps"] == 30 and model.info_["samples_seen"] == 960
    assert len(model.info_["train_loss_history"]) == 3
    assert model.sample(4, seed=0).shape == (4, tiny.d)


@pytest.mark.parametrize("params, name", [({"width": 30, "heads": 4}, "width"), ({"lr": 0.0}, "lr"),
                                          ({"max_steps": 0}, "max_steps"), ({"sample_steps": 0}, "sample_steps"),
                                          ({"batch_size": 0}, "batch_size"), ({"device": "nope"}, "device"),
                                          ({"dropout": 2.0}, "dropout"), ({"patch": 1}, "patch"),
                                          ({"patch": 2, "depth": 2}, "patch=2 with depth=2")])
def test_bad_params_raise(tiny, params, name):
    x, _ = tiny.sample(20, seed=1)
    with pytest.raises(ValueError, match=name):
        Diffusion(**params).fit(x, grammar=tiny)


def test_bad_inputs_raise(tiny):
    x, _ = tiny.sample(20, seed=1)
    with pytest.raises(ValueError, match="vocabulary"):
        Diffusion(max_steps=1).fit(np.full((4, tiny.d), tiny.v), grammar=tiny)
    model = Diffusion(width=16, depth=1, max_steps=2, device="cpu").fit(x, grammar=tiny)
    with pytest.raises(ValueError, match="n="):
        model.sample(0)
    with pytest.raises(ValueError, match="stream"):
        model.fit_stream(x)
